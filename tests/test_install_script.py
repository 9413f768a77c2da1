"""scripts/install.py: uv gets the indexes, wheel folders and caps pip is configured with."""

from tests.conftest import load_script

install = load_script("install")

# `pip config list` on this project's machines: a cap file, two local indexes, a wheel folder given
# both in a file and as PIP_FIND_LINKS, and a certificate bundle.
MACHINE_CONFIG = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
"""


def test_uv_looks_where_pip_is_configured_to() -> None:
    options = install.uv_options(install.pip_settings(MACHINE_CONFIG))
    assert options == [
        "--index-strategy",
        "unsafe-best-match",
        "--extra-index-url",
        "file:///opt/pypi/simple",
        "--extra-index-url",
        "file:///opt/pypi-more/simple",
        "--find-links",
        "/opt/wheels",
        "--constraint",
        "/etc/xdg/pip/constraints.txt",
    ]


def test_environment_overrides_install_section_overrides_global() -> None:
    settings = install.pip_settings(
        ":env:.index-url='https://env.example/simple'\n"
        "install.index-url='https://install.example/simple'\n"
        "global.index-url='https://global.example/simple'\n"
        "global.no-index='true'\n"
        "user.timeout='5'\n"
    )
    assert settings["index-url"] == "https://env.example/simple"
    options = install.uv_options(settings)
    assert options[options.index("--index-url") + 1] == "https://env.example/simple"
    assert options[-1] == "--no-index"
    # A section pip does not apply to `pip install` is left out.
    assert "timeout" not in settings


def test_no_pip_configuration_means_pypi_as_pip_would_use() -> None:
    assert install.uv_options(install.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]


def test_pips_certificate_and_timeout_reach_uv(monkeypatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("UV_HTTP_TIMEOUT", raising=False)
    env = install.uv_environment(install.pip_settings(MACHINE_CONFIG))
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["UV_HTTP_TIMEOUT"] == "180"
