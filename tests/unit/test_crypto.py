"""Sealing at rest: MultiFernet key rotation through the settings, and re-sealing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet, InvalidToken

from app.kernel import crypto
from app.kernel.settings import get_settings


@pytest.fixture
def use_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`use_keys(b, a)`: the process now runs with TOOLQUEUE_SECRET_KEY=b,a."""

    def use(*keys: bytes) -> None:
        monkeypatch.setenv("TOOLQUEUE_SECRET_KEY", ",".join(k.decode() for k in keys))
        get_settings.cache_clear()
        crypto._fernet.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    crypto._fernet.cache_clear()


def test_old_keys_read_the_first_writes_and_reseal_moves_to_it(use_keys):
    a, b = Fernet.generate_key(), Fernet.generate_key()
    value = {"access_token": "at", "refresh_token": "rt"}
    use_keys(a)
    sealed_a = crypto.seal(value)

    use_keys(b, a)  # rotation begins: B writes, A still reads
    assert crypto.unseal(sealed_a) == value
    assert Fernet(b).decrypt(crypto.seal(value).encode())  # new writes are under B
    resealed = crypto.reseal(sealed_a)
    assert resealed != sealed_a
    assert Fernet(b).extract_timestamp(resealed.encode()) == Fernet(a).extract_timestamp(
        sealed_a.encode()
    )

    use_keys(b)  # A retired
    assert crypto.unseal(resealed) == value
    with pytest.raises(InvalidToken):
        crypto.unseal(sealed_a)


def test_reseal_refuses_a_value_no_key_reads(use_keys):
    use_keys(Fernet.generate_key())
    foreign = Fernet(Fernet.generate_key()).encrypt(b'"x"').decode()
    with pytest.raises(InvalidToken):
        crypto.reseal(foreign)
