"""The tests run with the network switched off in-process (pytest-socket,
see pyproject.toml): this proves the switch is on, so that every other test
that passes did so without the network."""
import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_network_is_off():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed


def test_the_library_and_readers_import_without_reaching_out(library, fixtures):
    from readingroom import ingest_paths

    report = ingest_paths(library, [fixtures / "html", fixtures / "mediawiki"], progress=False)
    assert report.added >= 3
