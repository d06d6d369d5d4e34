"""Who may connect: tokens, users and login sessions, TLS certificates for development."""
