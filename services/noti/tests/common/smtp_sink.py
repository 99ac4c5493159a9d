"""A real SMTP server for noti's tests (aiosmtpd): every accepted message is written to a folder
as one .eml file. The first --fail-first DATA commands are answered 451 (try again later), and
recipients starting with "bounce" are refused with 550, so both kinds of failure are real SMTP
replies. Prints "ready" once listening."""
import argparse, email, email.policy, json, os, ssl, time, uuid
from aiosmtpd.controller import Controller

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--dir", required=True)
parser.add_argument("--fail-first", type=int, default=0)
# With a certificate and key, the server offers STARTTLS.
parser.add_argument("--cert")
parser.add_argument("--key")
args = parser.parse_args()


class Sink:
    def __init__(self):
        self.failures_left = args.fail_first

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.failures_left > 0:
            self.failures_left -= 1
            return "451 4.3.0 try again later"
        # Decoded here with Python's own MIME parser, so the tests see what a mail client shows.
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = [
            {"type": p.get_content_type(), "body": p.get_content()}
            for p in msg.walk()
            if not p.is_multipart()
        ]
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "content_type": msg.get_content_type(),
            "tls": session.ssl is not None,
            "parts": parts,
        }
        name = os.path.join(args.dir, "%d-%s" % (time.time_ns(), uuid.uuid4().hex))
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 OK"


tls = {}
if args.cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    tls = {"tls_context": context}
controller = Controller(Sink(), hostname="127.0.0.1", port=args.port, **tls)
controller.start()
print("ready", flush=True)
# The controller serves from its own thread; this one only waits to be killed.
while True:
    time.sleep(3600)
