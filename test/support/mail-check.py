"""Reads one RFC 5322 message on stdin and prints, as JSON, what Python's `email` (policy.strict) makes of it.

An independent parser for the message tests (test/support/mail-tools.ts calls it): every defect the parser
registers (message, part or header level), the top-level headers decoded, the addresses with their display names,
and per part its content type, charset, file name and raw parameter names.
"""

import base64
import email
import json
import sys
from email import policy

# The RFC 2047 words that Outlook needs in a Content-Type `name="…"` are, to Python, an encoded word inside a
# quoted string (which RFC 2047 §5 does not allow, and Python decodes anyway). Nothing else is tolerated.
NAME_WORD_DEFECTS = {
    "encoded word inside quoted string",
    "missing trailing whitespace after encoded-word",
}


def header_defects(where, msg):
    found = []
    for name, value in msg.items():
        for d in getattr(value, "defects", ()):
            text = str(d)
            raw = "".join(v for k, v in msg.raw_items() if k.lower() == name.lower())
            if name.lower() == "content-type" and text in NAME_WORD_DEFECTS and 'name="=?' in raw:
                continue
            found.append({"where": where, "header": name, "defect": text})
    return found


def raw_param_names(part, header):
    # The parameter names as written, duplicates kept (the legacy parser keeps every one, quotes respected).
    params = part.get_params(header=header, unquote=False) or []
    return [k.lower() for k, _ in params[1:]]


def check(data):
    out = {"defects": [], "headers": {}, "addresses": {}, "parts": []}
    try:
        msg = email.message_from_bytes(data, policy=policy.strict)
    except Exception as e:  # policy.strict raises on the first message-level defect
        out["defects"].append({"where": "message", "defect": f"{type(e).__name__}: {e}"})
        return out
    for i, part in enumerate(msg.walk()):
        where = "message" if i == 0 else f"part {i}"
        out["defects"].extend({"where": where, "defect": str(d)} for d in part.defects)
        out["defects"].extend(header_defects(where, part))
        info = {
            "contentType": part.get_content_type(),
            "charset": part.get_param("charset"),
            "filename": part.get_filename(),
            "name": part["content-type"].params.get("name") if part["content-type"] else None,
            "disposition": part.get_content_disposition(),
            "contentTypeParams": raw_param_names(part, "content-type"),
            "dispositionParams": raw_param_names(part, "content-disposition"),
        }
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            info["size"] = len(payload)
            if part.get_content_maintype() == "text":
                try:
                    info["text"] = part.get_content()
                except Exception as e:
                    out["defects"].append({"where": where, "defect": f"content: {e}"})
        out["parts"].append(info)
    for name in msg.keys():
        out["headers"].setdefault(name, []).extend(str(v) for v in msg.get_all(name))
    for name in ("From", "To", "Cc", "Reply-To"):
        value = msg.get(name)
        if value is not None:
            out["addresses"][name] = [
                {"name": a.display_name, "address": a.addr_spec} for a in value.addresses
            ]
    return out


def main():
    if sys.argv[1:] == ["--many"]:
        # A JSON array of base64 messages in, a JSON array of results out (one process for many messages).
        batch = json.loads(sys.stdin.read())
        print(json.dumps([check(base64.b64decode(m)) for m in batch], ensure_ascii=False))
    else:
        print(json.dumps(check(sys.stdin.buffer.read()), ensure_ascii=False))


main()
