"""schemathesis hooks of the contract test: the cross-parameter rules of the image routes.

A 400 answered to a request the schema allows is accepted only when one of these rules, which
the parameters' descriptions in the document state, explains it. Written from the document, not
from the server's code, so that a 400 the document does not explain is a finding.
"""

import schemathesis


def _given(query, name):
    return name in query and query[name] is not None


def _true(query, name):
    return str(query.get(name, "")).lower() == "true"


def _unwritable_field_names(body):
    """Names of form fields that a multipart part header cannot carry (control characters or a
    double quote): the legacy form reads past other fields, but not past one it cannot parse."""
    if not isinstance(body, dict):
        return []
    return [name for name in body if any(ord(c) < 0x20 or ord(c) == 0x7F or c == '"' for c in name)]


def documented_refusals(path, query, body=None):
    """The documented rules the request breaks (an empty list when it breaks none)."""
    broken = []
    if _unwritable_field_names(body):
        broken.append("a form field name with control characters or a double quote")
    sized = _given(query, "width") or _given(query, "height")
    quality = str(query.get("quality", ""))
    if "-" in quality:
        low, high = quality.split("-", 1)
        if low.isdigit() and high.isdigit() and int(low) > int(high):
            broken.append("quality MIN above MAX")
    if _true(query, "allow_downscale") and not _given(query, "max_bytes"):
        broken.append("allow_downscale without max_bytes")
    if _given(query, "target_quality") and str(query.get("mode", "")).lower() == "lossless":
        broken.append("target_quality with mode=lossless")
    if path == "/v1/compress":
        if (_given(query, "fit") or _given(query, "enlarge")) and not sized:
            broken.append("fit or enlarge without width or height")
        fit = str(query.get("fit", "fit")).lower()
        both = _given(query, "width") and _given(query, "height")
        if fit == "scale" and both:
            broken.append("fit=scale with both sides")
        if fit in ("cover", "fill") and sized and not both:
            broken.append(f"fit={fit} with one side")
    return broken


@schemathesis.check
def refusals_follow_documented_rules(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    query = case.query or {}
    if not documented_refusals(case.path, query, case.body):
        raise AssertionError(f"400 for a schema-valid request that breaks no documented rule: query {query!r}, answer {response.text[:300]!r}")
    return None


@schemathesis.hook
def filter_body(ctx, body):
    """Skips forms with a field name holding a NUL byte. No part header can carry one (schemathesis
    finds the server refuses NUL in headers, as HTTP says), and such a field is left out of the
    request sent, so a negative case "a form with an unknown field" would arrive as a valid form."""
    return not (isinstance(body, dict) and any("\x00" in str(name) for name in body))
