"""The public API of headroom_litellm."""

from __future__ import annotations

import headroom_litellm


def test_all_is_the_public_api() -> None:
    assert set(headroom_litellm.__all__) == {
        "METADATA_KEYS",
        "AsyncHeadroomStream",
        "HeadroomCallback",
        "HeadroomRouter",
        "HeadroomStream",
        "Identity",
        "IdentityDefaults",
        "MemoryRegistry",
        "acompletion",
        "close_all",
        "completion",
        "default_registry",
    }
    assert len(headroom_litellm.__all__) == len(set(headroom_litellm.__all__))
    for name in headroom_litellm.__all__:
        assert getattr(headroom_litellm, name) is not None


def test_callback_is_a_litellm_custom_logger() -> None:
    from litellm.integrations.custom_logger import CustomLogger

    assert issubclass(headroom_litellm.HeadroomCallback, CustomLogger)
