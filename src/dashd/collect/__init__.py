"""Sources of samples: the host collector and the agent."""
