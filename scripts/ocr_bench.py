"""OCR speed and accuracy on scanned pages: `python scripts/ocr_bench.py [--pages N]`.

Renders A4 pages of the corpus's Vietnamese text at 300 dpi (DejaVu Sans 11 pt), saves them as an
image-only PDF, OCRs it the way `rag index` does (one Tesseract per core, empty cache) and writes
pages per minute and the character error rate to bench/ocr.md, which `rag bench` keeps in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.text import tone_normalize  # noqa: E402
from tests.docfixtures import cer, render_text  # noqa: E402


def page_texts(n: int, chars: int = 2600) -> list[str]:
    paras = []
    for f in sorted((ROOT / "corpus").glob("*.txt")):
        paras += [p.strip() for p in f.read_text("utf-8").split("\n") if len(p.strip()) > 80]
    pages, cur = [], ""
    for p in paras:
        if len(cur) + len(p) > chars:
            pages.append(cur.strip())
            cur = ""
            if len(pages) == n:
                break
        cur += p + "\n"
    return pages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--out", default=str(ROOT / "bench" / "ocr.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RAG_CACHE_DIR"] = tmp  # no cached pages: every page is OCR'd
        from rag.formats.ocr import ocr_pdf_pages

        texts = page_texts(args.pages)
        images = [render_text(t, width_px=2480, size_pt=11) for t in texts]
        pdf = Path(tmp) / "scan.pdf"
        images[0].save(pdf, "PDF", resolution=300, save_all=True, append_images=images[1:])
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        found = ocr_pdf_pages(pdf, list(range(1, len(texts) + 1)))
        seconds = time.perf_counter() - t0
    rates = [cer(found[i + 1], tone_normalize(t)) for i, t in enumerate(texts)]
    res = {
        "pages": len(texts),
        "chars_per_page": round(sum(map(len, texts)) / len(texts)),
        "seconds": round(seconds, 1),
        "pages_per_minute": round(60 * len(texts) / seconds, 1),
        "cer": round(sum(rates) / len(rates), 4),
        "cer_max": round(max(rates), 4),
        "cores": os.cpu_count(),
        "load_before": round(load, 1),
    }
    md = [
        f"## OCR of scanned pages (`python scripts/ocr_bench.py --pages {len(texts)}`)",
        "",
        f"{res['pages']} A4 pages of corpus text (~{res['chars_per_page']} characters each) rendered at 300 dpi in",
        "DejaVu Sans 11 pt, as an image-only PDF, read by Tesseract 5 `vie` one process per core (the way",
        "`rag index` reads scans), cache empty.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| pages per minute ({res['cores']} cores) | {res['pages_per_minute']} |",
        f"| seconds for {res['pages']} pages | {res['seconds']} |",
        f"| character error rate (mean / worst page) | {res['cer']:.2%} / {res['cer_max']:.2%} |",
        f"| load average when started (other work on the machine) | {res['load_before']} |",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(md), "utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(res, indent=1), "utf-8")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
