#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

The seeds come from the shared test vectors (tests/vectors/vectors.json) and a few pages; each
file is named by the SHA-1 of its content, as libFuzzer names the inputs it keeps. Run it again
after changing the vectors: `python3 fuzz/seeds.py`. The input format of each target is described
at the top of its file in fuzz/fuzz_targets/ and in fuzz/src/lib.rs: the first byte is a
separator, the fields follow.
"""

import hashlib
import json
import pathlib
import shutil

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "tests" / "vectors" / "vectors.json"
# A seed is at most this long: the fuzzer makes longer inputs itself, but grows them slowly, so
# the repeated baggage vectors are kept past the 8192-byte limit.
MAX_SEED = 4096
MAX_BAGGAGE_SEED = 12288

TRACE = "771a43a4192642f0b136d5159a501700"
SPAN = "b7ad6b7169203331"


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def expand(unit, times, limit=MAX_SEED):
    """A vector's repeated input, cut to `limit` bytes."""
    data = b(unit) * max(1, min(times, limit // max(1, len(b(unit))) + 1))
    return data[:limit]


def framed(*fields, last_may_hold_it=False):
    """The fields joined by a separator byte that none of them holds, that byte first. The last
    field may hold it where the target cuts only at the first separator (the inject target)."""
    checked = fields[:-1] if last_may_hold_it else fields
    used = set().union(*(set(f) for f in checked)) if checked else set()
    for sep in [0x1E, 0x1F, 0x7C, 0x0A, 0x00, *range(0x80, 0x100)]:
        if sep not in used:
            return bytes([sep]) + bytes([sep]).join(fields)
    raise ValueError("no free separator")


def write(target, seeds):
    folder = FUZZ / "corpus" / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    unique = {hashlib.sha1(seed).hexdigest(): seed for seed in seeds}
    for name, seed in sorted(unique.items()):
        (folder / name).write_bytes(seed)
    return len(unique), sum(len(s) for s in unique.values())


def main():
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    traces = [
        expand(v["repeat"]["unit"], v["repeat"]["times"]) if v.get("repeat") else b(v["input"])
        for v in vectors["sentry_trace"]
    ]
    baggages = [
        [expand(v["repeat"]["unit"], v["repeat"]["times"], MAX_BAGGAGE_SEED)]
        if v.get("repeat")
        else [b(h)[:MAX_SEED] for h in v["headers"]]
        for v in vectors["baggage"]
    ]
    sampled = f"{TRACE}-{SPAN}-1".encode()
    not_sampled = f"{TRACE}-{SPAN}-0".encode()
    deferred = f"{TRACE}-{SPAN}".encode()
    incoming = [sampled, not_sampled, deferred]

    counts = {}
    counts["sentry_trace"] = write("sentry_trace", traces)
    counts["baggage_dsc"] = write("baggage_dsc", [framed(*values) for values in baggages])

    # Control byte: bit 0 strict, bit 1 a sentry-trace came, bit 2 an own org id.
    continuation = []
    for i, values in enumerate(baggages):
        trace = incoming[i % len(incoming)]
        control = bytes([[2, 6, 7, 3][i % 4]])
        continuation.append(framed(control, trace, b"42", *values))
    for trace in traces[:40]:
        continuation.append(framed(b"\x06", trace, b"1", b"sentry-org_id=1,sentry-sample_rate=0.5"))
    continuation.append(framed(b"\x00", b"", b""))
    # Regression: a back-filled sample_rand of 0.000249 read back as 0.000248.
    continuation.append(framed(b"\x02", b"000000000000000100000000000000f9-" + SPAN.encode(), b""))
    counts["continuation"] = write("continuation", continuation)

    # Control: byte 0 bits 0-1 decision (none, sampled, not sampled), bit 2 traceparent;
    # bytes 1.. the span id.
    render = []
    span = bytes.fromhex(SPAN)
    for i, values in enumerate(baggages):
        control = bytes([i % 8]) + span
        render.append(framed(control, incoming[i % len(incoming)], *values))
    for trace in traces[:20]:
        render.append(framed(b"\x05" + span, trace, b"sentry-release=a%22b,sentry-x=<&>"))
    counts["render"] = write("render", render)

    counts["inject"] = write("inject", [
        framed(control, page, last_may_hold_it=True) for control, page in pages()
    ])

    total = 0
    for target, (files, size) in counts.items():
        total += size
        print(f"{target:>13}: {files:4} seeds, {size:7} bytes")
    print(f"{'total':>13}: {total:7} bytes")


def pages():
    """(control, page) seeds of the inject target. Control byte 0 picks the tags, byte 1 the
    padding (only with its two high bits set), bytes 2.. the chunk lengths."""
    layout = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="viewport" content="width=device-width">\n'
        "</head>\n<body>\n<h1>Tom &amp; Jerry</h1>\n</body>\n</html>\n"
    )
    tags = (
        f'<meta name="sentry-trace" content="{TRACE}-{SPAN}-1"/>\n'
        f'<meta name="baggage" content="sentry-trace_id={TRACE},sentry-public_key=abc,'
        'sentry-release=%27&#x27;%22"/>\n'
        f'<meta name="traceparent" content="00-{TRACE}-{SPAN}-01"/>'
    )
    texts = [
        layout,
        layout.replace("</head>", tags + "\n</head>"),
        f"<html><head>{tags}{tags}</head><body>{tags}</body></html>",
        "<html><HEAD><title>t</title></HEAD ><body></body></html>",
        "<head><!-- </head> --><script>let s = '</head>';</script><style>/* </head> */</style>"
        "<title></head></title></head>",
        "<head><!--x--!></head>",
        "<head><!-->x</head>",
        '<head><link href="</head>"><link href=\'</head>\'></head>',
        '<head><meta name="sentry-trace" content="x"></head>',
        "<head><META NAME='Sentry-Trace' content=x></head>",
        '<head><meta content="x" name=sentry-trace></head>',
        "<head><script>'<meta name=\"sentry-trace\">'</script></head>",
        "<head></head></head><head></head>",
        "<head><body></head>",
        "<head><plaintext></head>",
        "<head><textarea></head></textarea><noscript></head></noscript></head>",
        "<head><!DOCTYPE </head>><?xml </head>?></head>",
        "<<</head/>",
        "</head\n>",
        "<head></head",
        "",
        # Script data escapes, templates, foreign content.
        "<head><script><!--<script></script></head>--></script></head><body></body>",
        "<head><script><!-- <script> --></head></script><script><!--</script></head>",
        "<head><template></head><meta name=\"sentry-trace\" content=\"x\"></template></head>",
        "<head><template><template></template></head></template></head>",
        "<head><svg><style></head></style></svg></head>",
        # Trace tags as the browser SDK reads them, or not.
        '<head><meta name="Sentry-Trace" content="x"><meta name="sentry&#45;trace" content="y">'
        "</head>",
        '<head><meta name="sentry&hyphen;trace"><meta name=x name=baggage>'
        "<meta name=\"&#x62;aggage\" content=b></head>",
        # Between </head> and <body>, a <meta> goes into the head.
        f"<html><head><title>t</title></head>\n{tags}\n<body>{tags}</body></html>",
        "\ufeff<!doctype html><head><meta charset=utf-16></head>",
        # Regression (of the oracle): a `</head` inside an unquoted attribute value.
        "<head><meta charset=utf-</head\n16></head>",
        # Regression: stripping took out the line break between the page's traceparent and
        # the injected tags.
        '<head><meta name="traceparent" content="00-x">\n</head>',
    ]
    seeds = []
    for i, text in enumerate(texts):
        page = text.encode()
        seeds.append((bytes([i % 5, 0]), page))
        # Cut into 1-byte chunks, and into a few uneven ones.
        seeds.append((bytes([i % 5, 0]) + bytes(len(page)), page))
        seeds.append((bytes([(i + 2) % 5, 0, 7, 3, 0, 64, 200]), page))
    seeds.append((b"\x00\x01", bytes(range(256)) + b"</head>\xff\xfe"))
    # Byte-order marks of UTF-16 and UTF-32: the page is left alone.
    seeds.append((b"\x01\x00", b"\xff\xfe<head></head><meta name=baggage>"))
    seeds.append((b"\x01\x00", b"\x00\x00\xfe\xff<head></head>"))
    seeds.append((b"\x01\x00", "\ufeff<head></head>".encode("utf-16-le")))
    # Near the scanner's 64 KiB limit: 63 KiB of padding.
    seeds.append((b"\x01\xff", b"<head></head><body></body>"))
    seeds.append((b"\x00\xff\x05", b"<head><title>t</title></head>"))
    # Regression: a block of tags across the 64 KiB mark was stripped in part.
    seeds.append((b"\x01\xff", b"<head>" + b"a" * 800 + b"</head><body></body>"))
    return seeds


if __name__ == "__main__":
    main()
