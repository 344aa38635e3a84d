"""SOAP messages made safe to keep: every secret in them masked before a capture is stored.

A captured exchange may carry passwords: SetParameterValues and Inform values of secret
parameters (``tasks/secret_values.py``: ``...Password``, Wi-Fi keys, URLs with ``user:password@``),
and the ``Password`` of Download/Upload/ScheduleDownload (TR-069 A.4.1.4, A.4.1.5). The message is
parsed with the hardened parser (``cwmp/xmlsafe.py``) and those values replaced by ``***``; a body
that does not parse is not kept at all, only its size.
"""

from __future__ import annotations

from lxml import etree

from cwmp.errors import MalformedMessage
from cwmp.xmlsafe import load
from tasks.secret_values import REDACTED, is_secret, mask_url, shown, url_has_password

CREDENTIAL_ELEMENTS = frozenset({"Password"})  # Download, Upload, ScheduleDownload (TR-069 A.4.1)
MAX_KEPT = 256 * 1024  # characters of one masked message kept


def _local(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def masked(body: bytes) -> str:
    """The message as text with its secrets masked; a short note instead of a body that is not XML."""
    if not body.strip():
        return ""
    try:
        root = load(body)
    except (MalformedMessage, etree.XMLSyntaxError):  # the hardened parser refused it: keep nothing
        return f"(not kept: {len(body)} bytes that are not a readable SOAP message)"
    for element in root.iter():
        name = _local(element)
        if name == "ParameterValueStruct":
            children = {_local(child): child for child in element}
            key, value = children.get("Name"), children.get("Value")
            if key is not None and value is not None and is_secret(key.text or "", value.text or ""):
                value.text = str(shown(key.text or "", value.text or ""))
        elif name in CREDENTIAL_ELEMENTS and element.text:
            element.text = REDACTED
        elif len(element) == 0 and url_has_password(element.text):
            element.text = mask_url(element.text or "")
    text = etree.tostring(root, pretty_print=True, encoding="unicode")
    return text if len(text) <= MAX_KEPT else text[:MAX_KEPT] + "\n(cut)"
