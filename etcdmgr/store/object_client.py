"""Blocking calls to one S3, GCS or Azure Blob prefix through obstore's sync API (callers run
them in worker threads), with every failure turned into one StoreError line that names the URL,
the endpoint and where the credentials come from (never a secret).

Only object-store URLs import this module, so obstore is loaded only when one is used.

Two HTTP clients per store: small objects get short timeouts and few retries, so that a wrong
bucket, a refused key, an unreachable endpoint or a TLS failure is reported within about 5 s;
backup files get a long overall timeout with an idle-read limit instead. Uploads of files larger
than one part go as multipart uploads of PART_SIZE bytes, PARTS_IN_FLIGHT at a time, read from
the file as they are sent; downloads are streamed to a temp file. Memory stays flat whatever the
size, and an upload cut short is never a visible object.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import AzureStore, GCSStore, S3Store

from etcdmgr.model.errors import InvalidData
from etcdmgr.store.errors import StoreError
from etcdmgr.store.files import check_sha256
from etcdmgr.store.object_config import ObjectSettings
from etcdmgr.util.atomic import replacing

PART_SIZE = 8 << 20
PARTS_IN_FLIGHT = 2
READ_CHUNK = 1 << 20
SMALL_LIMIT = 1 << 20  # specs, commands, metas, records: anything larger is not one of ours
AWS_REGION_URL = "https://s3.amazonaws.com"  # answers any bucket's region in a header

_SMALL_CLIENT = {"connect_timeout": "2s", "timeout": "4s"}
_BULK_CLIENT = {"connect_timeout": "2s", "timeout": "24h", "read_timeout": "60s"}
_RETRY: dict[str, Any] = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=3),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), "base": 2},
}
_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_STATUS = re.compile(r"status code: (\d{3})")


@dataclass(frozen=True)
class Meta:
    """What a listing says of one object."""

    etag: str
    size: int


def normal_etag(etag: str | None) -> str:
    """ETags compare without quotes or a weak marker (Azure lists them bare, answers quoted)."""
    text = etag or ""
    return text.removeprefix("W/").strip('"')


class ObjectClient:
    """One bucket prefix; ``noun`` ("backup store", "discovery store") starts each error line."""

    def __init__(self, settings: ObjectSettings, noun: str) -> None:
        self.settings = settings
        self.noun = noun
        self._lock = threading.Lock()
        self._stores: tuple[Any, Any] | None = None

    # -- connection ------------------------------------------------------------------------------

    def _small(self) -> Any:
        return self._connect()[0]

    def _bulk(self) -> Any:
        return self._connect()[1]

    def _connect(self) -> tuple[Any, Any]:
        """The two obstore clients, made on first use (reading the CA file and, for S3 on AWS
        with no region given, asking which region holds the bucket)."""
        with self._lock:
            if self._stores is None:
                config = dict(self.settings.config)
                ca = self._read_ca()
                if self.settings.resolve_region:
                    config["region"] = self._bucket_region(ca)
                self._stores = (self._make(config, _SMALL_CLIENT, ca), self._make(config, _BULK_CLIENT, ca))
            return self._stores

    def _make(self, config: dict[str, str], client: dict[str, str], ca: bytes | None) -> Any:
        options: dict[str, Any] = {**client, "allow_http": self.settings.allow_http}
        if ca is not None:
            options["root_certificate"] = ca
        location = self.settings.location
        kind = {"s3": S3Store, "gcs": GCSStore, "azure": AzureStore}[location.kind]
        try:
            return kind(
                location.bucket,
                prefix=location.prefix or None,
                config=config,
                client_options=options,
                retry_config=_RETRY,
            )
        except BaseError as e:
            raise StoreError(
                f"{self._where()}: cannot be used: {_first_line(e)} ({self.settings.describe()})"
            ) from None

    def _read_ca(self) -> bytes | None:
        path = self.settings.ca_file
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as e:
            raise StoreError(
                f"{self._where()}: cannot read the CA file {path} ({self.settings.ca_source}): {e.strerror or e}"
            ) from None

    def _bucket_region(self, ca: bytes | None) -> str:
        """The region of an AWS bucket, as S3 tells anyone in a header (kops asks too)."""
        bucket = self.settings.location.bucket
        try:
            return bucket_region(bucket, AWS_REGION_URL, ca)
        except OSError as e:
            raise StoreError(
                f"{self._where()}: cannot find the region of bucket {bucket!r} ({e}); set AWS_REGION "
                f"({self.settings.describe()})"
            ) from None

    # -- small objects -------------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(body, etag) of a small object, None when absent."""
        try:
            result = obstore.get(self._small(), key)
            size = int(result.meta["size"])
            if size > SMALL_LIMIT:
                raise InvalidData(f"{self._where()}/{key}: larger than {SMALL_LIMIT} bytes ({size})")
            return bytes(result.bytes()), normal_etag(result.meta["e_tag"])
        except FileNotFoundError as e:
            self._unless_bucket_missing(e, f"reading {key}")
            return None
        except BaseError as e:
            raise self._error(e, f"reading {key}") from None

    def put(self, key: str, data: bytes, *, create: bool = False) -> str | None:
        """Write a small object, whole or not at all; return its etag. With ``create``, only if
        absent: None when it exists (S3 If-None-Match: *, GCS generation 0, Azure If-None-Match)."""
        try:
            result = obstore.put(
                self._small(), key, data, mode="create" if create else "overwrite", use_multipart=False
            )
        except (AlreadyExistsError, PreconditionError) as e:
            if create:
                return None
            raise self._error(e, f"writing {key}") from None
        except (BaseError, FileNotFoundError) as e:
            raise self._error(e, f"writing {key}") from None
        return normal_etag(result["e_tag"])

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (absent ones are fine), in one request where the store allows."""
        if not keys:
            return
        try:
            obstore.delete(self._small(), keys)
        except FileNotFoundError as e:
            self._unless_bucket_missing(e, "deleting")
            for key in keys:  # one of several was gone: delete the others one by one
                self._delete_one(key)
        except BaseError as e:
            raise self._error(e, f"deleting {keys[0]}") from None

    def _delete_one(self, key: str) -> None:
        try:
            obstore.delete(self._small(), key)
        except FileNotFoundError as e:
            self._unless_bucket_missing(e, f"deleting {key}")
        except BaseError as e:
            raise self._error(e, f"deleting {key}") from None

    def list(self, prefix: str = "") -> dict[str, Meta]:
        """Every object under ``prefix`` (a folder: "control", "" for all), keyed by path."""
        found: dict[str, Meta] = {}
        try:
            for chunk in obstore.list(self._small(), prefix=prefix or None, chunk_size=1000):
                for meta in chunk:
                    found[meta["path"]] = Meta(normal_etag(meta["e_tag"]), int(meta["size"]))
        except BaseError as e:
            raise self._error(e, f"listing {prefix + '/' if prefix else 'the store'}") from None
        return found

    def list_top(self, prefix: str = "") -> dict[str, Meta]:
        """The objects directly under ``prefix``, as a folder's files (nothing deeper)."""
        try:
            listed = obstore.list_with_delimiter(self._small(), prefix=prefix or None)
        except BaseError as e:
            raise self._error(e, f"listing {prefix + '/' if prefix else 'the store'}") from None
        return {m["path"]: Meta(normal_etag(m["e_tag"]), int(m["size"])) for m in listed["objects"]}

    # -- backup files ----------------------------------------------------------------------------

    def upload(self, key: str, src: Path) -> str:
        """Copy the file ``src`` to ``key``, reading it once as it goes; return its sha256 hex."""
        digest = hashlib.sha256()
        try:
            size = src.stat().st_size
            if size <= PART_SIZE:
                data = src.read_bytes()
                digest.update(data)
                obstore.put(self._bulk(), key, data, use_multipart=False)
            else:
                obstore.put(
                    self._bulk(),
                    key,
                    _chunks(src, digest),
                    chunk_size=PART_SIZE,
                    max_concurrency=PARTS_IN_FLIGHT,
                )
        except BaseError as e:
            raise self._error(e, f"writing {key}") from None
        except OSError as e:
            if _from_store(e):
                raise self._error(e, f"writing {key}") from None
            raise StoreError(f"cannot write {key} to {self._where()}: {src}: {e.strerror or e}") from None
        return digest.hexdigest()

    def download(self, key: str, dest: Path, expect_sha256: str | None) -> str | None:
        """Stream ``key`` to ``dest`` (atomically) and return its sha256 hex; None when absent.
        A checksum other than ``expect_sha256`` leaves ``dest`` as it was (StoreError)."""
        try:
            with replacing(dest, 0o600) as out:
                if (actual := self.stream(key, out.write, expect_sha256)) is None:
                    raise _Absent
                return actual
        except _Absent:
            return None  # and ``dest`` is as it was
        except OSError as e:  # writing the local file
            raise StoreError(f"cannot fetch {key} of {self._where()} to {dest}: {e.strerror or e}") from None

    def stream(self, key: str, sink: Callable[[bytes], object], expect_sha256: str | None) -> str | None:
        """Pass ``key`` to ``sink`` chunk by chunk and return its sha256 hex; None when absent. A
        checksum other than ``expect_sha256`` raises StoreError after the last chunk."""
        digest = hashlib.sha256()
        try:
            result = obstore.get(self._bulk(), key)
            for chunk in result.stream(min_chunk_size=READ_CHUNK):
                digest.update(chunk)
                sink(chunk)
        except FileNotFoundError as e:
            if not _from_store(e):
                raise
            self._unless_bucket_missing(e, f"reading {key}")
            return None
        except BaseError as e:
            raise self._error(e, f"reading {key}") from None
        actual = digest.hexdigest()
        check_sha256(actual, expect_sha256, f"{self._where()}/{key}")
        return actual

    # -- errors ----------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.noun} {self.settings.location.url}"

    def _unless_bucket_missing(self, e: Exception, what: str) -> None:
        """A 404 for a missing bucket is the store's failure, not an absent object."""
        if _problem(e, self.settings) is not None:
            raise self._error(e, what) from None

    def _error(self, e: Exception, what: str) -> StoreError:
        problem = _problem(e, self.settings) or _first_line(e)
        return StoreError(f"{self._where()}: {problem} ({what}; {self.settings.describe()})")


class _Absent(Exception):
    """The object to download is not in the store."""


def _from_store(e: OSError) -> bool:
    """obstore reports a missing object (or bucket) as a FileNotFoundError naming no file."""
    return isinstance(e, FileNotFoundError) and e.filename is None


def _chunks(src: Path, digest: Any) -> Iterator[bytes]:
    with src.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
            yield chunk


def _problem(e: Exception, settings: ObjectSettings) -> str | None:
    """Plain words for the failures users meet: no bucket, access denied, unreachable, TLS."""
    text = str(e)
    lowered = text.lower()
    code = m.group(1) if (m := _CODE.search(text)) else ""
    status = m.group(1) if (m := _STATUS.search(text)) else ""
    bucket = f"{settings.bucket_word} {settings.location.bucket!r}"
    if code in ("NoSuchBucket", "ContainerNotFound") or "bucket does not exist" in lowered:
        return f"no such {bucket}"
    if isinstance(e, PermissionDeniedError | UnauthenticatedError) or status in ("401", "403"):
        return f"access denied to {bucket}{f' ({code})' if code else ''}"
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status == "301":
        return f"{bucket} is in another region: set AWS_REGION to its region"
    if any(w in lowered for w in ("certificate", "tls", "ssl", "unknownissuer")):
        return "TLS failure talking to the endpoint (is the CA trusted? see --store-ca-file)"
    if any(w in lowered for w in ("fetching token", "credential", "metadata")) and not status:
        return "cannot get credentials"
    if "kind: timeout" in lowered:
        return f"the endpoint did not answer within {_SMALL_CLIENT['timeout']}"
    if any(
        w in lowered
        for w in ("error sending request", "connection refused", "dns error", "timed out", "connect")
    ):
        return "endpoint unreachable"
    return None


def _first_line(e: Exception) -> str:
    line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return line[:300]


def bucket_region(bucket: str, base_url: str, ca: bytes | None = None) -> str:
    """The ``x-amz-bucket-region`` S3 answers to a HEAD of the bucket, whatever its status."""
    context = ssl.create_default_context()
    if ca is not None:
        context.load_verify_locations(cadata=ca.decode())
    request = urllib.request.Request(f"{base_url}/{bucket}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            region = response.headers.get("x-amz-bucket-region")
    except urllib.error.HTTPError as e:
        region = e.headers.get("x-amz-bucket-region")
    if not region:
        raise OSError(f"{base_url} named no region for it")
    return str(region)
