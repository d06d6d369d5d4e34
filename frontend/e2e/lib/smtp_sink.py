"""A real SMTP server for the alerting e2e test: aiosmtpd on 127.0.0.1:PORT
(argv[1]); prints one JSON line per message received (envelope and
subject), and "READY" once listening."""

import email
import email.policy
import json
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos, "subject": message["Subject"],
                          "parts": [p.get_content_type() for p in message.walk() if not p.is_multipart()]}),
              flush=True)
        return "250 2.0.0 queued by the e2e sink"


controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("READY", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
