from __future__ import annotations

from pathlib import Path

import pytest
from web_support import Consortium, build_consortium


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    c = build_consortium(Path(tmp_path_factory.mktemp("web")))
    yield c
    c.store.close()
