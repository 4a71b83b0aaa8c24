"""Where an object-store URL points and how to reach it (pure: no I/O, no obstore import).

`s3://bucket/prefix`, `gs://bucket/prefix`, `azureblob://container/prefix` (also `az://`) are
read together with the environment the way users already set it up for etcd-manager and their
cloud tools:

- S3: kops' `S3_ENDPOINT` + `S3_ACCESS_KEY_ID` + `S3_SECRET_ACCESS_KEY` (+ `S3_REGION`) for
  MinIO, Ceph, Spaces and other S3-compatible servers (path-style requests, as kops makes them);
  else the standard `AWS_*` variables, web identity, container credentials or the instance's
  role (obstore's own chain), `AWS_ENDPOINT_URL(_S3)` for another endpoint.
- GCS: `GOOGLE_APPLICATION_CREDENTIALS` (or obstore's `GOOGLE_SERVICE_ACCOUNT*`), gcloud's
  application-default credentials, else the instance's service account.
- Azure: `AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY`
  (also kops' `AZURE_STORAGE_ACCESS_KEY`), a SAS token, a service principal, else the managed
  identity.

Each ObjectSettings carries a description of where its credentials come from, for error lines:
it names variables and key ids, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.store.schemes import SCHEMES, SUPPORTED

S3_DEFAULT_REGION = "us-east-1"
GCLOUD_ADC = Path(".config/gcloud/application_default_credentials.json")


@dataclass(frozen=True)
class ObjectLocation:
    kind: str  # "s3", "gcs" or "azure"
    bucket: str  # the bucket (Azure: the container)
    prefix: str  # the folder inside it: "" or "a/b", no slashes at the ends
    url: str  # as the user wrote it, for messages


@dataclass(frozen=True)
class ObjectSettings:
    """Everything needed to make the client: obstore's config keys (which may hold secrets and are
    never logged) and plain words for messages."""

    location: ObjectLocation
    config: dict[str, str] = field(repr=False)
    endpoint: str  # "AWS S3", "http://127.0.0.1:9000", ... (messages only)
    credentials: str  # where the credentials come from (messages only; no secret)
    allow_http: bool = False
    ca_file: Path | None = None  # PEM roots trusted besides the system's
    ca_source: str = ""  # the flag or variable that named it
    resolve_region: bool = False  # S3 on AWS with no region given: ask where the bucket lives

    @property
    def bucket_word(self) -> str:
        return "container" if self.location.kind == "azure" else "bucket"

    def describe(self) -> str:
        """'endpoint X, credentials Y[, CA Z]' for the end of an error line."""
        ca = f", CA {self.ca_file} ({self.ca_source})" if self.ca_file else ""
        return f"endpoint {self.endpoint}, credentials: {self.credentials}{ca}"


def parse_object_url(url: str, what: str, error: type[EtcdmgrError]) -> ObjectLocation | None:
    """The bucket and prefix of an object-store URL; None for other schemes (file://, paths)."""
    parts = urlsplit(url)
    kind = SCHEMES.get(parts.scheme.lower())
    if kind is None:
        return None
    if not parts.netloc:
        raise error(
            f"{what} {url!r} names no {'container' if kind == 'azure' else 'bucket'}: expected {SUPPORTED}"
        )
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise error(f"{what} {url!r}: expected {SUPPORTED} (no user, port, query or fragment)")
    prefix = unquote(parts.path).strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise error(f"{what} {url!r}: the prefix may not hold empty, '.' or '..' parts")
    return ObjectLocation(kind, parts.netloc, prefix, url)


def object_settings(
    location: ObjectLocation,
    environ: Mapping[str, str],
    error: type[EtcdmgrError],
    ca_file: Path | None = None,
) -> ObjectSettings:
    """How to reach ``location`` given the environment; raises ``error`` for settings that
    cannot work (e.g. S3_ENDPOINT without keys, an Azure container without an account)."""
    make = {"s3": _s3, "gcs": _gcs, "azure": _azure}[location.kind]
    settings = make(location, environ, error)
    ca_source = "--store-ca-file" if ca_file else ""
    if ca_file is None:
        for var in ("AWS_CA_BUNDLE",) * (location.kind == "s3") + ("SSL_CERT_FILE",):
            if environ.get(var):
                ca_file, ca_source = Path(environ[var]), var
                break
    return ObjectSettings(
        location=location,
        config=settings.config,
        endpoint=settings.endpoint,
        credentials=settings.credentials,
        allow_http=settings.endpoint.startswith("http://"),
        ca_file=ca_file,
        ca_source=ca_source,
        resolve_region=settings.resolve_region,
    )


@dataclass(frozen=True)
class _Parts:
    config: dict[str, str]
    endpoint: str
    credentials: str
    resolve_region: bool = False


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str]:
    """(variable, value) of the first of ``names`` set to a non-empty value, else ("", "")."""
    for name in names:
        if environ.get(name):
            return name, environ[name]
    return "", ""


def _s3(location: ObjectLocation, environ: Mapping[str, str], error: type[EtcdmgrError]) -> _Parts:
    endpoint = environ.get("S3_ENDPOINT", "")
    if endpoint:
        # kops' variables for S3-compatible servers: static keys, path-style, S3_REGION or us-east-1.
        for var in ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
            if not environ.get(var):
                raise error(f"{location.url}: {var} must be set when S3_ENDPOINT is set (kops' rule)")
        return _Parts(
            config={
                "endpoint": endpoint,
                "access_key_id": environ["S3_ACCESS_KEY_ID"],
                "secret_access_key": environ["S3_SECRET_ACCESS_KEY"],
                "region": environ.get("S3_REGION") or S3_DEFAULT_REGION,
                "virtual_hosted_style_request": "false",
            },
            endpoint=endpoint,
            credentials=f"S3_ACCESS_KEY_ID={environ['S3_ACCESS_KEY_ID']} (with S3_ENDPOINT)",
        )
    _, custom = _first(environ, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
    _, region = _first(environ, "AWS_REGION", "AWS_DEFAULT_REGION")
    config = {"region": region} if region else {}
    return _Parts(
        config=config,
        endpoint=custom or f"AWS S3 ({region or 'region of the bucket'})",
        credentials=_aws_credentials(environ),
        resolve_region=not region and not custom,
    )


def _aws_credentials(environ: Mapping[str, str]) -> str:
    """Which link of obstore's AWS credential chain applies."""
    if environ.get("AWS_SKIP_SIGNATURE", "").lower() in ("1", "true"):
        return "none (AWS_SKIP_SIGNATURE)"
    if environ.get("AWS_ACCESS_KEY_ID"):
        token = " with AWS_SESSION_TOKEN" if environ.get("AWS_SESSION_TOKEN") else ""
        return f"AWS_ACCESS_KEY_ID={environ['AWS_ACCESS_KEY_ID']}{token}"
    if environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return f"web identity token {environ['AWS_WEB_IDENTITY_TOKEN_FILE']} for {environ.get('AWS_ROLE_ARN', '(no AWS_ROLE_ARN)')}"
    if environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or environ.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return "container credentials (AWS_CONTAINER_CREDENTIALS_*)"
    profile = " (AWS_PROFILE and ~/.aws files are not read)" if environ.get("AWS_PROFILE") else ""
    return f"the instance's role (EC2 instance metadata){profile}"


def _gcs(location: ObjectLocation, environ: Mapping[str, str], error: type[EtcdmgrError]) -> _Parts:
    var, value = _first(
        environ,
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    )
    if var == "GOOGLE_SERVICE_ACCOUNT_KEY":
        credentials = "the key in GOOGLE_SERVICE_ACCOUNT_KEY"
    elif var:
        credentials = f"{var}={value}"
    elif environ.get("HOME") and (Path(environ["HOME"]) / GCLOUD_ADC).is_file():
        credentials = f"gcloud application-default credentials (~/{GCLOUD_ADC})"
    else:
        credentials = "the instance's service account (GCE metadata server)"
    config = {"application_credentials": value} if var == "GOOGLE_APPLICATION_CREDENTIALS" else {}
    base = environ.get("GOOGLE_BASE_URL", "")
    return _Parts(config=config, endpoint=base or "Google Cloud Storage", credentials=credentials)


def parse_connection_string(text: str) -> dict[str, str]:
    """Azure's `Key=Value;Key=Value` connection string (values may hold '=', as keys do)."""
    pairs = (part.partition("=") for part in text.split(";") if part.strip())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def _azure(location: ObjectLocation, environ: Mapping[str, str], error: type[EtcdmgrError]) -> _Parts:
    config: dict[str, str] = {}
    conn = environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    if conn:
        fields = parse_connection_string(conn)
        account = fields.get("AccountName", "")
        if fields.get("BlobEndpoint"):
            config["endpoint"] = fields["BlobEndpoint"].rstrip("/")
        elif fields.get("EndpointSuffix") and account:
            protocol = fields.get("DefaultEndpointsProtocol") or "https"
            config["endpoint"] = f"{protocol}://{account}.blob.{fields['EndpointSuffix']}"
        if fields.get("AccountKey"):
            config["account_key"] = fields["AccountKey"]
            what = "account key"
        elif fields.get("SharedAccessSignature"):
            config["sas_key"] = fields["SharedAccessSignature"]
            what = "SAS token"
        else:
            raise error(
                f"{location.url}: AZURE_STORAGE_CONNECTION_STRING holds neither AccountKey nor SharedAccessSignature"
            )
        if not account:
            raise error(f"{location.url}: AZURE_STORAGE_CONNECTION_STRING names no AccountName")
        credentials = f"{what} of {account} from AZURE_STORAGE_CONNECTION_STRING"
    else:
        _, account = _first(environ, "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME")
        key_var, key = _first(
            environ, "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_ACCOUNT_KEY"
        )
        sas_var, _ = _first(environ, "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_SAS_KEY")
        if key:
            config["account_key"] = key
            credentials = f"account key of {account} ({key_var})"
        elif sas_var:
            credentials = f"SAS token ({sas_var})"
        elif environ.get("AZURE_CLIENT_ID") and environ.get("AZURE_CLIENT_SECRET"):
            credentials = f"service principal AZURE_CLIENT_ID={environ['AZURE_CLIENT_ID']}"
        elif environ.get("AZURE_FEDERATED_TOKEN_FILE"):
            credentials = f"workload identity ({environ['AZURE_FEDERATED_TOKEN_FILE']})"
        else:
            credentials = "the managed identity (instance metadata)"
        _, endpoint = _first(environ, "AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT")
        if endpoint:
            config["endpoint"] = endpoint.rstrip("/")
        if not account:
            raise error(
                f"{location.url}: the storage account is not set: set AZURE_STORAGE_ACCOUNT (with "
                "AZURE_STORAGE_KEY) or AZURE_STORAGE_CONNECTION_STRING"
            )
    config["account_name"] = account
    endpoint_text = config.get("endpoint") or f"https://{account}.blob.core.windows.net"
    return _Parts(config=config, endpoint=endpoint_text, credentials=credentials)
