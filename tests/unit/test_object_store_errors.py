"""Object-store URLs, credentials and failures: what users set is read the way kops and the
clouds' tools read it, and every failure is one line naming the URL and where the credentials
come from, never a secret, within 5 s. Servers are real processes on loopback (moto's S3,
Azurite); GCS has no emulator here that takes obstore's uploads, so gs:// is checked for its
construction, credentials and error lines against a closed loopback port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from object_servers import (
    AZURITE_KEY,
    BUCKET,
    Server,
    azurite_connection_string,
    closed_port,
    start_moto,
    tls_files,
    unique_prefix,
)

from etcdmgr.cli import ctl_cmd
from etcdmgr.discovery import DiscoveryError, open_discovery
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.store import StoreError, open_store
from etcdmgr.store.object_client import bucket_region
from etcdmgr.store.object_config import object_settings, parse_object_url
from etcdmgr.store.object_store import POLL_INTERVAL, ObjectStore

SPEC = ClusterSpec(member_count=1, etcd_version="3.5.30")
SECRET = "s3cr3t-never-printed"
CLEAN_ENV = (
    "S3_ENDPOINT",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_BASE_URL",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    # Never ask a cloud's metadata service from a test: point it at a closed loopback port.
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", f"http://127.0.0.1:{closed_port()}")


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


async def one_line_failure(call: object, *, within: float = 5.0) -> str:
    """The StoreError or DiscoveryError line of ``call()``, checked to come within ``within`` s."""
    started = time.monotonic()
    with pytest.raises((StoreError, DiscoveryError)) as failure:
        await call()  # type: ignore[operator]
    elapsed = time.monotonic() - started
    line = str(failure.value)
    print(f"{elapsed:.2f}s {line}")
    assert elapsed < within, f"took {elapsed:.1f}s: {line}"
    assert "\n" not in line
    assert SECRET not in line
    return line


# -- URLs and settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "bucket", "prefix"),
    [
        ("s3://bucket/cluster/main", "s3", "bucket", "cluster/main"),
        ("s3://bucket", "s3", "bucket", ""),
        ("gs://bucket/x/", "gcs", "bucket", "x"),
        ("azureblob://container/p", "azure", "container", "p"),
        ("az://container/p", "azure", "container", "p"),
    ],
)
def test_object_urls(url: str, kind: str, bucket: str, prefix: str) -> None:
    location = parse_object_url(url, "backup store", StoreError)
    assert location is not None
    assert (location.kind, location.bucket, location.prefix) == (kind, bucket, prefix)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("swift://container/x", "scheme 'swift' is not supported; use file:///path, s3://"),
        ("s3:///prefix", "names no bucket"),
        ("azureblob:///prefix", "names no container"),
        ("s3://bucket/x?versioned=1", "no user, port, query"),
        ("s3://bucket/a/../b", "may not hold"),
    ],
)
def test_bad_object_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("/", "/").replace("?", r"\?")):
        open_store(url)


def test_open_store_serves_each_kind_polling_slower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct")
    for url in ("s3://b/p", "gs://b/p", "azureblob://c/p", "az://c/p"):
        store = open_store(url)
        assert isinstance(store, ObjectStore)
        assert store.url == url
        assert store.poll_interval == POLL_INTERVAL
    assert open_store("file:///tmp/x").poll_interval < 1


def test_kops_s3_variables() -> None:
    location = parse_object_url("s3://b/p", "backup store", StoreError)
    assert location is not None
    env = {
        "S3_ENDPOINT": "https://minio.example:9000",
        "S3_ACCESS_KEY_ID": "AKID",
        "S3_SECRET_ACCESS_KEY": SECRET,
    }
    settings = object_settings(location, env, StoreError)
    assert settings.config == {
        "endpoint": "https://minio.example:9000",
        "access_key_id": "AKID",
        "secret_access_key": SECRET,
        "region": "us-east-1",
        "virtual_hosted_style_request": "false",
    }
    assert settings.credentials == "S3_ACCESS_KEY_ID=AKID (with S3_ENDPOINT)"
    assert not settings.allow_http and not settings.resolve_region
    assert SECRET not in settings.describe() and SECRET not in repr(settings)
    assert object_settings(location, {**env, "S3_REGION": "nyc3"}, StoreError).config["region"] == "nyc3"
    with pytest.raises(StoreError, match="S3_SECRET_ACCESS_KEY must be set when S3_ENDPOINT is set"):
        object_settings(location, {"S3_ENDPOINT": "http://x", "S3_ACCESS_KEY_ID": "a"}, StoreError)


def test_aws_credential_sources_are_named() -> None:
    location = parse_object_url("s3://b/p", "backup store", StoreError)
    assert location is not None

    def creds(env: dict[str, str]) -> str:
        return object_settings(location, env, StoreError).credentials

    keys = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": SECRET}
    assert creds(keys) == "AWS_ACCESS_KEY_ID=AKID"
    assert creds({**keys, "AWS_SESSION_TOKEN": SECRET}) == "AWS_ACCESS_KEY_ID=AKID with AWS_SESSION_TOKEN"
    assert creds({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:r"}).startswith("web identity")
    assert creds({}) == "the instance's role (EC2 instance metadata)"
    assert "not read" in creds({"AWS_PROFILE": "dev"})
    plain = object_settings(location, {}, StoreError)
    assert plain.resolve_region and plain.config == {}
    regional = object_settings(location, {"AWS_REGION": "eu-west-1"}, StoreError)
    assert not regional.resolve_region and regional.config == {"region": "eu-west-1"}


def test_gcs_and_azure_credential_sources(tmp_path: Path) -> None:
    gs = parse_object_url("gs://b/p", "backup store", StoreError)
    az = parse_object_url("azureblob://c/p", "backup store", StoreError)
    assert gs is not None and az is not None
    key_file = str(tmp_path / "key.json")
    gcs = object_settings(gs, {"GOOGLE_APPLICATION_CREDENTIALS": key_file}, StoreError)
    assert gcs.credentials == f"GOOGLE_APPLICATION_CREDENTIALS={key_file}"
    assert gcs.config == {"application_credentials": key_file}
    assert "metadata" in object_settings(gs, {"HOME": str(tmp_path)}, StoreError).credentials

    conn = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={SECRET}==;EndpointSuffix=core.chinacloudapi.cn"
    azure = object_settings(az, {"AZURE_STORAGE_CONNECTION_STRING": conn}, StoreError)
    assert azure.config == {
        "account_name": "acct",
        "account_key": f"{SECRET}==",
        "endpoint": "https://acct.blob.core.chinacloudapi.cn",
    }
    assert azure.credentials == "account key of acct from AZURE_STORAGE_CONNECTION_STRING"
    kops = object_settings(
        az, {"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_ACCESS_KEY": SECRET}, StoreError
    )
    assert kops.config == {"account_name": "acct", "account_key": SECRET}
    assert kops.credentials == "account key of acct (AZURE_STORAGE_ACCESS_KEY)"
    assert SECRET not in azure.describe() + kops.describe() + repr(azure) + repr(kops)
    managed = object_settings(az, {"AZURE_STORAGE_ACCOUNT": "acct"}, StoreError)
    assert managed.credentials == "the managed identity (instance metadata)"
    with pytest.raises(StoreError, match="set AZURE_STORAGE_ACCOUNT"):
        object_settings(az, {}, StoreError)


def test_the_ca_comes_from_the_flag_or_the_usual_variables(tmp_path: Path) -> None:
    location = parse_object_url("s3://b/p", "backup store", StoreError)
    assert location is not None
    flag = tmp_path / "flag.pem"
    env = {"AWS_CA_BUNDLE": "/aws.pem", "SSL_CERT_FILE": "/ssl.pem"}
    assert object_settings(location, env, StoreError, flag).ca_file == flag
    assert object_settings(location, env, StoreError).ca_source == "AWS_CA_BUNDLE"
    assert object_settings(location, {"SSL_CERT_FILE": "/ssl.pem"}, StoreError).ca_file == Path("/ssl.pem")


def test_the_region_of_a_bucket_is_asked_of_s3(moto_server: Server) -> None:
    assert bucket_region(BUCKET, moto_server.endpoint) == "us-east-1"
    with pytest.raises(OSError, match="named no region"):
        bucket_region("no-such-bucket", moto_server.endpoint)


# -- failures, one line each -----------------------------------------------------------------


async def test_no_such_bucket(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, moto_server.env)
    store = open_store("s3://no-such-bucket/main")
    line = await one_line_failure(store.read_spec)
    assert line.startswith("backup store s3://no-such-bucket/main: no such bucket 'no-such-bucket'")
    assert "S3_ACCESS_KEY_ID=test (with S3_ENDPOINT)" in line
    assert f"endpoint {moto_server.endpoint}" in line
    for call in (store.list_backups, store.list_commands, lambda: store.write_spec(SPEC)):
        assert "no such bucket" in await one_line_failure(call)
    discovery = open_discovery("s3://no-such-bucket/discovery")
    assert "discovery store s3://no-such-bucket/discovery: no such bucket" in await one_line_failure(
        discovery.poll
    )


async def test_wrong_credentials(azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "d3Jvbmcta2V5LWZvci10ZXN0aW5nLW9ubHktMTIzNDU2Nzg5MA=="
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string(azurite_server.port, wrong)
    )
    store = open_store(f"azureblob://{BUCKET}/{unique_prefix()}")
    line = await one_line_failure(store.read_spec)
    assert f"access denied to container '{BUCKET}'" in line
    assert "account key of devstoreaccount1 from AZURE_STORAGE_CONNECTION_STRING" in line
    assert wrong not in line and AZURITE_KEY not in line


async def test_azure_account_and_key_variables(
    azurite_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT": "devstoreaccount1",
        "AZURE_STORAGE_KEY": AZURITE_KEY,
        "AZURE_STORAGE_ENDPOINT": f"{azurite_server.endpoint}/devstoreaccount1",
    }
    use(monkeypatch, env)
    url = f"az://{BUCKET}/{unique_prefix()}"
    await open_store(url).write_spec(SPEC)
    assert await open_store(url).read_spec() == SPEC
    assert azurite_server.raw(url.rpartition("/")[2]).keys() == ["control/etcd-cluster-spec"]


async def test_missing_container(azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, azurite_server.env)
    line = await one_line_failure(open_store("az://no-such-container/p").list_backups)
    assert "no such container 'no-such-container'" in line


async def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    use(
        monkeypatch,
        {"S3_ENDPOINT": f"http://127.0.0.1:{port}", "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": SECRET},
    )
    line = await one_line_failure(open_store("s3://bucket/main").read_spec)
    assert line.startswith("backup store s3://bucket/main: endpoint unreachable (listing control")
    assert f"endpoint http://127.0.0.1:{port}" in line


async def test_an_endpoint_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env = {
            "S3_ENDPOINT": f"http://127.0.0.1:{port}",
            "S3_ACCESS_KEY_ID": "k",
            "S3_SECRET_ACCESS_KEY": SECRET,
        }
        use(monkeypatch, env)
        line = await one_line_failure(open_store("s3://bucket/main").read_spec)
    assert line.startswith("backup store s3://bucket/main: the endpoint did not answer within 4s")


@pytest.fixture(scope="module")
def tls_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("tls-moto")
    files = tls_files(folder)
    server = start_moto(folder, tls=files)
    yield server, files[0]
    server.stop()


async def test_tls_failure_and_a_private_ca(
    tls_moto: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_moto
    use(monkeypatch, server.env)
    url = f"s3://{BUCKET}/{unique_prefix()}"
    line = await one_line_failure(open_store(url).read_spec)
    assert "TLS failure talking to the endpoint" in line
    assert f"endpoint https://127.0.0.1:{server.port}" in line
    trusted = open_store(url, ca_file=ca)
    await trusted.write_spec(SPEC)
    assert await trusted.read_spec() == SPEC
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))  # the usual variable does the same
    assert await open_store(url).read_spec() == SPEC
    missing = open_store(url, ca_file=ca.parent / "missing.pem")
    assert "cannot read the CA file" in await one_line_failure(missing.read_spec)


def gcs_key(path: Path) -> Path:
    """A service-account key for tests: no OAuth round trip (obstore's `disable_oauth`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    doc = {
        "type": "service_account",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "etcdmgr-test@example.iam.gserviceaccount.com",
        "disable_oauth": True,
    }
    path.write_text(json.dumps(doc))
    return path


async def test_gcs_unreachable_and_bad_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = gcs_key(tmp_path / "key.json")
    port = closed_port()
    use(
        monkeypatch,
        {"GOOGLE_APPLICATION_CREDENTIALS": str(key), "GOOGLE_BASE_URL": f"http://127.0.0.1:{port}"},
    )
    line = await one_line_failure(open_store("gs://bucket/main").read_spec)
    assert line.startswith("backup store gs://bucket/main: endpoint unreachable")
    assert f"credentials: GOOGLE_APPLICATION_CREDENTIALS={key}" in line
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    line = await one_line_failure(open_store("gs://bucket/main").read_spec)
    assert "missing.json" in line


# -- ctl: exit code 1 and one line ------------------------------------------------------------


@pytest.mark.parametrize("case", ["scheme", "bucket", "credentials", "unreachable", "tls"])
def test_ctl_says_why_in_one_line(
    case: str,
    moto_server: Server,
    azurite_server: Server,
    tls_moto: tuple[Server, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if case == "scheme":
        url, expect = "swift://c/p", "scheme 'swift' is not supported"
    elif case == "bucket":
        use(monkeypatch, moto_server.env)
        url, expect = "s3://no-such-bucket/p", "no such bucket"
    elif case == "credentials":
        conn = azurite_connection_string(azurite_server.port, "d3Jvbmc=")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
        url, expect = f"azureblob://{BUCKET}/p", "access denied"
    elif case == "unreachable":
        port = closed_port()
        use(
            monkeypatch,
            {
                "S3_ENDPOINT": f"http://127.0.0.1:{port}",
                "S3_ACCESS_KEY_ID": "k",
                "S3_SECRET_ACCESS_KEY": SECRET,
            },
        )
        url, expect = "s3://bucket/p", "endpoint unreachable"
    else:
        use(monkeypatch, tls_moto[0].env)
        url, expect = f"s3://{BUCKET}/p", "TLS failure"
    started = time.monotonic()
    assert ctl_cmd.main([f"--backup-store={url}", "get"]) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("etcdmgr ctl: ") and expect in err, err
    assert SECRET not in err


def test_ctl_exits_1_as_a_process(moto_server: Server, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **moto_server.env}
    done = subprocess.run(
        [sys.executable, "-m", "etcdmgr", "ctl", "--backup-store=s3://no-such-bucket/p", "get"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("etcdmgr ctl: backup store s3://no-such-bucket/p: no such bucket")
    assert done.stderr.count("\n") == 1


def test_ctl_round_trip_on_s3(
    moto_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, moto_server.env)
    url = f"s3://{BUCKET}/{unique_prefix()}"
    assert (
        ctl_cmd.main(
            [f"--backup-store={url}", "--member-count=3", "--etcd-version=3.5.30", "configure-cluster"]
        )
        == 0
    )
    capsys.readouterr()
    assert ctl_cmd.main([f"--backup-store={url}", "get"]) == 0
    assert "member_count:3" in capsys.readouterr().out.replace(" ", "").replace(
        "member_count:", "member_count:"
    )
    assert trio.run(open_store(url).read_spec) == ClusterSpec(member_count=3, etcd_version="3.5.30")
