"""Where the upstream keepalived sample configs are (GPL: read from ../shared, never copied),
for the importer's unit and lab tests: VIPD_KA_SAMPLES, else ../shared from the checkout (a
worktree sits one level deeper), else /work/shared. When none exists, the first default is
named, so the tests that need it fail saying where they looked."""
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = next((p for p in [pathlib.Path(os.environ.get("VIPD_KA_SAMPLES", "/nonexistent")),
                            REPO.parent / "shared" / "keepalived-samples",
                            REPO.parent.parent / "shared" / "keepalived-samples",
                            pathlib.Path("/work/shared/keepalived-samples")]
                if p.is_dir()), REPO.parent / "shared" / "keepalived-samples")
