#!/usr/bin/env python3
"""Page weight of the dashboard: every file the overview loads on a cold first visit
(the page, its stylesheet, every ES module reachable through static imports and the
import map; uPlot is loaded later, only on pages with charts), as sent with gzip and
decoded. Uses the release binary (`cargo build --release -p warden`)."""

import gzip
import re
import urllib.parse
import urllib.request

from _warden import Warden

IMPORT = re.compile(r"""(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*['"]([^'"]+)['"]""")


def fetch(url):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        enc = r.headers.get("Content-Encoding")
    body = gzip.decompress(raw) if enc == "gzip" else raw
    return len(raw), body.decode("utf-8", "replace")


def main():
    w = Warden()
    try:
        sent, page = fetch(w.url + "/")
        rows = [("/", sent, len(page))]
        imap = dict(re.findall(r'"([\w/]+)":"([^"]+)"', page.split('type="importmap">')[1].split("</script>")[0]))
        queue = re.findall(r'(?:href|src)="(/assets/[^"]+\.(?:css|js|mjs|svg))"', page)
        seen = set()
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            sent, body = fetch(w.url + path)
            rows.append((path, sent, len(body.encode())))
            if path.endswith((".js", ".mjs")):
                for a, b in IMPORT.findall(body):
                    spec = a or b
                    target = imap.get(spec) or urllib.parse.urljoin(path, spec)
                    queue.append(target)
        width = max(len(r[0]) for r in rows)
        for path, sent, decoded in rows:
            print(f"{path:<{width}}  {sent / 1024:7.1f} KB sent  {decoded / 1024:7.1f} KB decoded")
        total_sent = sum(r[1] for r in rows)
        total_decoded = sum(r[2] for r in rows)
        print(f"{'total (' + str(len(rows)) + ' files)':<{width}}  {total_sent / 1024:7.1f} KB sent  {total_decoded / 1024:7.1f} KB decoded")
        prefix = re.search(r'src="(/assets/[^/]+)/app.js"', page).group(1)
        sent, _ = fetch(w.url + prefix + "/vendor/uPlot.esm.js")
        print(f"uPlot, loaded only on pages with charts: {sent / 1024:.1f} KB sent")
    finally:
        w.close()


if __name__ == "__main__":
    main()
