"""scripts/install.py: uv gets the indexes, wheel folders and caps pip is configured with."""

import pytest

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
        "global.trusted-host='mirror.example other.example'\n"
        "user.timeout='5'\n"
    )
    assert settings["index-url"] == "https://env.example/simple"
    options = install.uv_options(settings)
    assert options[options.index("--index-url") + 1] == "https://env.example/simple"
    assert options[-1] == "--no-index"
    hosts = [options[i + 1] for i, flag in enumerate(options) if flag == "--allow-insecure-host"]
    assert hosts == ["mirror.example", "other.example"]
    # A section pip does not apply to `pip install` is left out.
    assert "timeout" not in settings


def test_no_pip_configuration_means_pypi_as_pip_would_use() -> None:
    assert install.uv_options(install.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]


def test_pips_certificate_proxy_and_timeout_reach_uv(monkeypatch) -> None:
    for name in ("SSL_CERT_FILE", "UV_HTTP_TIMEOUT", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    config = MACHINE_CONFIG + "global.proxy='http://proxy.example:3128'\n"
    env = install.uv_environment(install.pip_settings(config))
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["UV_HTTP_TIMEOUT"] == "180"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://proxy.example:3128"


def test_a_users_own_environment_wins_over_pips_files(monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/home/me/corporate.pem")
    env = install.uv_environment(install.pip_settings(MACHINE_CONFIG))
    assert env["SSL_CERT_FILE"] == "/home/me/corporate.pem"


def test_a_venv_without_uv_gets_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(install.sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(SystemExit, match="uv not found: install it first"):
        install.main(["-e", "."])
