#!/usr/bin/env python3
"""Verifies one webhook delivery with the Standard Webhooks reference library
(`pip install standardwebhooks==1.1.0`), independently of ImTicket's own signing code.

Reads JSON on stdin: {"secret": "whsec_…", "headers": {name: value}, "body": "<raw body>"}.
Exits 0 and prints the verified payload's `type` if the signature is valid; exits 1 otherwise.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

request = json.load(sys.stdin)
try:
    payload = Webhook(request["secret"]).verify(request["body"], request["headers"])
except Exception as err:  # the library raises WebhookVerificationError
    print(f"invalid: {err}")
    sys.exit(1)
print(payload["type"])
