#!/usr/bin/env python3
"""A local SMTP server for the tests (aiosmtpd, `pip install aiosmtpd==1.4.6`): accepts every
mail on 127.0.0.1:PORT and writes each to DIR/<n>.json, decoded by Python's own `email`
package (not by ImTicket's code): {to, from, subject, message_id, text, html, raw}. Written
whole, then renamed, so a reader never sees half a mail. Prints `ready` once it listens.

    smtp_sink.py PORT DIR
"""
import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller

port, folder = int(sys.argv[1]), sys.argv[2]
os.makedirs(folder, exist_ok=True)


class Keep:
    def __init__(self):
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        kept = {
            "envelope_to": envelope.rcpt_tos,
            "to": str(message["To"]),
            "from": str(message["From"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        path = os.path.join(folder, f"{os.getpid()}-{self.n:06}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(kept, out)
        os.rename(path + ".tmp", path)
        return "250 kept"


controller = Controller(Keep(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    asyncio.get_event_loop().run_until_complete(asyncio.Event().wait())
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
