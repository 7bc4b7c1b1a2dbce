"""Parses a received e-mail with Python's own MIME parser, for the notification tests.

Usage: mime_parts.py FILE. Prints one JSON object: the raw Subject header as sent, the
decoded subject, from, to, the top content type, and each leaf part's content type, charset
and decoded text.
"""

import email
import email.policy
import json
import sys

raw = open(sys.argv[1], "rb").read()
compat = email.message_from_bytes(raw)
msg = email.message_from_bytes(raw, policy=email.policy.default)
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    parts.append({
        "type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "transfer_encoding": part.get("Content-Transfer-Encoding"),
        "text": part.get_content(),
    })
print(json.dumps({
    "subject_raw": compat.get("Subject"),
    "subject": str(msg["Subject"]),
    "from": str(msg["From"]),
    "to": str(msg["To"]),
    "type": msg.get_content_type(),
    "parts": parts,
}, ensure_ascii=False))
