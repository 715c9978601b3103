"""``kdvision infer``: restore every image of a folder with a trained student (restoration task)."""
from __future__ import annotations

import sys


def cmd_infer(args) -> int:
    from kdvision.config import load_config
    from kdvision.infer import restore_folder_from_config

    cfg = load_config(args.config, args.overrides)
    skipped: list = []
    written = restore_folder_from_config(cfg, args.checkpoint, args.input, args.out, tile=args.tile,
                                         overlap=args.overlap, self_ensemble=args.self_ensemble or None,
                                         progress=not args.quiet, skip_bad=args.skip_bad, skipped=skipped)
    for _, reason in skipped:  # the reason names the file
        print(f"kdvision: skipped: {reason}", file=sys.stderr)
    print(f"restored {len(written)} image(s) -> {args.out}" + (f"; skipped {len(skipped)}" if skipped else ""))
    return 0


def add_parser(sub, commands) -> None:
    p = sub.add_parser("infer", help="restore every image in a folder at its own size (restoration)")
    p.add_argument("config")
    p.add_argument("--checkpoint", required=True, help="run directory, kdvision checkpoint, state dict or safetensors")
    p.add_argument("--input", required=True, help="folder of images to restore (never modified)")
    p.add_argument("--out", required=True, help="folder for the restored PNGs (existing files are never overwritten)")
    p.add_argument("--tile", type=int, default=1024,
                   help="tile side for large images (pixels; a multiple of the network's multiple; 0: no tiling)")
    p.add_argument("--overlap", type=int, default=32, help="overlap between tiles (pixels, 0 <= overlap < tile)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and list) unreadable images instead of stopping before anything is written")
    p.add_argument("--self-ensemble", action="store_true", help="average the x8 flips/transposes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    commands["infer"] = cmd_infer
