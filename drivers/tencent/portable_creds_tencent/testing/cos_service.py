"""COS XML API emulation: routing by ``Host``, ``q-sign`` verification, CAM checks, objects."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote

from .account import Account, Bucket, Caller, CosObject, new_request_id
from .cam_eval import PolicyError, evaluate, parse_policy
from .http_types import HttpRequest, HttpResponse
from .normalise import cos_stored_form
from .signatures import cos_signature, parse_cos_authorization

HOST_RE = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9-]*-(?P<appid>\d+))\.cos\.(?P<region>[a-z0-9-]+)"
    r"\.myqcloud\.com(?::\d+)?$"
)

_BUCKET_SUBRESOURCES = ("policy", "lifecycle", "logging", "tagging", "delete", "versioning")
_MAX_META = 2048


class CosError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _xml(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b"<?xml version='1.0' encoding='utf-8' ?>\n" + body


def _parse_xml(body: bytes) -> ET.Element:
    """Parse a request body. DTDs are refused outright (no entity expansion games)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise CosError(400, "MalformedXML", "DTDs are not accepted.")
    try:
        return ET.fromstring(body)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        raise CosError(400, "MalformedXML", "The XML you provided was not well-formed.") from None


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class CosService:
    """One handler per request; all state lives in the ``Account``."""

    def __init__(self, account: Account) -> None:
        self.account = account

    # entry --------------------------------------------------------------------------------
    def handle(self, req: HttpRequest, host_match: re.Match[str]) -> HttpResponse:
        request_id = new_request_id()
        bucket_name = host_match.group("bucket")
        key = unquote(req.raw_path[1:]) if req.raw_path.startswith("/") else ""
        resource_url = f"{bucket_name}.cos.{host_match.group('region')}.myqcloud.com/{key}"
        try:
            if host_match.group("appid") != self.account.appid or (
                host_match.group("region") != self.account.region
            ):
                raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
            caller = self._authenticate(req, "/" + key)
            status, headers, body = self._dispatch(req, caller, bucket_name, key)
            headers = [*headers, ("x-cos-request-id", request_id)]
            return HttpResponse(status, tuple(headers), body)
        except CosError as err:
            hdrs: list[tuple[str, str]] = [("x-cos-request-id", request_id)]
            if req.method == "HEAD":
                return HttpResponse(err.status, tuple(hdrs), b"")
            root = ET.Element("Error")
            _sub(root, "Code", err.code)
            _sub(root, "Message", err.message)
            _sub(root, "Resource", resource_url)
            _sub(root, "RequestId", request_id)
            _sub(root, "TraceId", base64.b64encode(request_id.encode()).decode())
            hdrs.append(("Content-Type", "application/xml"))
            return HttpResponse(err.status, tuple(hdrs), _xml(root))

    # authentication -----------------------------------------------------------------------
    def _authenticate(self, req: HttpRequest, decoded_path: str) -> Caller:
        raw = req.header("authorization")
        from_query = False
        if not raw and req.has_param("q-sign-algorithm"):
            raw = "&".join(f"{k}={v}" for k, v in req.query if k.startswith("q-"))
            from_query = True
        if not raw:
            return Caller("anonymous", "")
        auth = parse_cos_authorization(raw)
        if auth is None or auth.algorithm != "sha1":
            raise CosError(400, "InvalidArgument", "Authorization header is malformed.")
        now = time.time()
        for window in (auth.sign_time, auth.key_time):
            start, _, end = window.partition(";")
            try:
                s, e = int(start), int(end)
            except ValueError:
                raise CosError(403, "AccessDenied", "q-sign-time is malformed.") from None
            if not s <= now <= e:
                raise CosError(403, "AccessDenied", "Request has expired")
        acct = self.account
        with acct.lock:
            perm = acct.keys.get(auth.access_key)
            sess = acct.sessions.get(auth.access_key)
        if perm is not None:
            secret = perm.secret_key
            if perm.uin == acct.owner_uin:
                caller = Caller("root", perm.uin)
            else:
                caller = Caller("user", perm.uin, user=acct.users[perm.uin])
        elif sess is not None:
            secret = sess.secret_key
            token = req.header("x-cos-security-token") or (
                req.param("x-cos-security-token") if from_query else None
            )
            if token is None or not hmac.compare_digest(token, sess.token):
                raise CosError(400, "InvalidToken", "The provided token is malformed or invalid.")
            if acct.now() >= sess.expires_at:
                raise CosError(400, "ExpiredToken", "The provided token has expired.")
            caller = Caller("session", acct.owner_uin, session=sess)
        else:
            raise CosError(
                403, "InvalidAccessKeyId", "The access key Id you provided does not exist."
            )
        headers: dict[str, str] = {}
        for name in auth.header_list:
            value = req.header(name)
            if value is None:
                raise CosError(403, "SignatureDoesNotMatch", f"signed header {name} is missing")
            headers[name] = value
        params: dict[str, str] = {}
        for name in auth.param_list:
            pval = req.param(name)
            if pval is None:
                raise CosError(403, "SignatureDoesNotMatch", f"signed parameter {name} is missing")
            params[name] = pval
        expected = cos_signature(
            secret,
            method=req.method,
            decoded_path=decoded_path,
            params=params,
            headers=headers,
            key_time=auth.key_time,
        )
        if not hmac.compare_digest(expected, auth.signature):
            raise CosError(
                403,
                "SignatureDoesNotMatch",
                "The Signature you specified does not match what we calculated.",
            )
        return caller

    # authorization ------------------------------------------------------------------------
    def _authorize(
        self,
        caller: Caller,
        bucket: Bucket | None,
        action: str,
        key: str | None,
        req: HttpRequest,
        extra: dict[str, str] | None = None,
    ) -> None:
        acct = self.account
        bucket_name = bucket.name if bucket else ""
        resource = acct.cos_resource(bucket_name, key)
        context: dict[str, str] = {
            "qcs:ip": req.client_ip,
            "cos:secure-transport": "false",
        }
        fo = req.header("x-cos-forbid-overwrite")
        if fo is not None:
            context["cos:x-cos-forbid-overwrite"] = fo
        context.update(extra or {})
        resource_policy = []
        if bucket is not None and bucket.policy:
            try:
                resource_policy = list(parse_policy(bucket.policy))
            except PolicyError:
                resource_policy = []
        with acct.lock:
            identity = acct.identity_statements(caller) if caller.kind != "anonymous" else []
        session = caller.session.session_policy if caller.session else None
        decision = evaluate(
            f"name/cos:{action}",
            resource,
            context,
            identity=identity,
            session=session,
            resource_policy=resource_policy,
            principal_names=caller.principal_names(acct.owner_uin),
        )
        if not decision.allowed:
            raise CosError(403, "AccessDenied", f"Access Denied. ({decision.reason})")

    # dispatch -----------------------------------------------------------------------------
    def _dispatch(
        self, req: HttpRequest, caller: Caller, bucket_name: str, key: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        acct = self.account
        with acct.lock:
            bucket = acct.buckets.get(bucket_name)
        m = req.method
        if not key:
            if m == "PUT" and not any(req.has_param(s) for s in _BUCKET_SUBRESOURCES):
                self._authorize(caller, Bucket(bucket_name), "PutBucket", None, req)
                with acct.lock:
                    if bucket_name in acct.buckets:
                        raise CosError(409, "BucketAlreadyExists", "The bucket already exists.")
                    acct.buckets[bucket_name] = Bucket(bucket_name)
                return 200, [], b""
            if bucket is None:
                raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
            return self._bucket_op(req, caller, bucket)
        if bucket is None:
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        return self._object_op(req, caller, bucket, key)

    def _bucket_op(
        self, req: HttpRequest, caller: Caller, bucket: Bucket
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        m = req.method
        acct = self.account
        if req.has_param("delete") and m == "POST":
            return self._delete_multiple(req, caller, bucket)
        if req.has_param("policy"):
            action = {"PUT": "PutBucketPolicy", "GET": "GetBucketPolicy"}.get(
                m, "DeleteBucketPolicy"
            )
            self._authorize(caller, bucket, action, None, req)
            if m == "PUT":
                try:
                    parse_policy(req.body.decode("utf-8"))
                except (PolicyError, UnicodeDecodeError) as exc:
                    raise CosError(400, "MalformedPolicy", str(exc)) from None
                with acct.lock:
                    bucket.policy = req.body.decode("utf-8")
                return 204, [], b""
            if m == "GET":
                if bucket.policy is None:
                    raise CosError(404, "NoSuchBucketPolicy", "The bucket policy does not exist.")
                return (
                    200,
                    [("Content-Type", "application/json")],
                    cos_stored_form(bucket.policy).encode(),
                )
            with acct.lock:
                bucket.policy = None
            return 204, [], b""
        if req.has_param("versioning"):
            return self._versioning(req, caller, bucket)
        for sub, noun, missing in (
            ("lifecycle", "Lifecycle", "NoSuchLifecycleConfiguration"),
            ("logging", "Logging", ""),
            ("tagging", "Tagging", "NoSuchTagSet"),
        ):
            if not req.has_param(sub):
                continue
            verb = {"PUT": "Put", "GET": "Get", "DELETE": "Delete"}.get(m)
            if verb is None:
                raise CosError(405, "MethodNotAllowed", "The method is not allowed.")
            self._authorize(caller, bucket, f"{verb}Bucket{noun}", None, req)
            attr = sub
            if m == "PUT":
                self._validate_bucket_xml(sub, req.body)
                with acct.lock:
                    setattr(bucket, attr, req.body)
                return 200, [], b""
            if m == "GET":
                stored = getattr(bucket, attr)
                if stored is None:
                    if sub == "logging":
                        return (
                            200,
                            [("Content-Type", "application/xml")],
                            _xml(ET.Element("BucketLoggingStatus")),
                        )
                    raise CosError(404, missing, f"The {sub} configuration does not exist.")
                return 200, [("Content-Type", "application/xml")], stored
            with acct.lock:
                setattr(bucket, attr, None)
            return 204, [], b""
        if m in ("GET",):
            return self._list(req, caller, bucket)
        if m == "HEAD":
            self._authorize(caller, bucket, "HeadBucket", None, req)
            return 200, [], b""
        if m == "DELETE":
            self._authorize(caller, bucket, "DeleteBucket", None, req)
            with acct.lock:
                if bucket.objects:
                    raise CosError(
                        409, "BucketNotEmpty", "The bucket you tried to delete is not empty."
                    )
                acct.buckets.pop(bucket.name, None)
            return 204, [], b""
        raise CosError(501, "NotImplemented", "This request is not implemented by the double.")

    def _versioning(
        self, req: HttpRequest, caller: Caller, bucket: Bucket
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """PUT/GET ?versioning. Once enabled a bucket can only be suspended, never unversioned
        again - and COS reportedly ignores x-cos-forbid-overwrite on it from then on."""
        if req.method not in ("PUT", "GET"):
            raise CosError(405, "MethodNotAllowed", "The method is not allowed.")
        verb = "Put" if req.method == "PUT" else "Get"
        self._authorize(caller, bucket, f"{verb}BucketVersioning", None, req)
        if req.method == "PUT":
            root = _parse_xml(req.body)
            status = root.findtext("Status")
            if root.tag != "VersioningConfiguration" or status not in ("Enabled", "Suspended"):
                raise CosError(400, "MalformedXML", "Status must be Enabled or Suspended")
            with self.account.lock:
                if status == "Enabled" or bucket.versioning is not None:
                    bucket.versioning = status
            return 200, [], b""
        out = ET.Element("VersioningConfiguration")
        if bucket.versioning is not None:
            _sub(out, "Status", bucket.versioning)
        return 200, [("Content-Type", "application/xml")], _xml(out)

    def _validate_bucket_xml(self, sub: str, body: bytes) -> None:
        root = _parse_xml(body)
        expected = {
            "lifecycle": "LifecycleConfiguration",
            "logging": "BucketLoggingStatus",
            "tagging": "Tagging",
        }[sub]
        if root.tag != expected:
            raise CosError(400, "MalformedXML", f"root element must be {expected}")
        if sub == "lifecycle":
            rules = root.findall("Rule")
            if not rules or len(rules) > 1000:
                raise CosError(400, "InvalidArgument", "a lifecycle needs 1-1000 rules")
            for rule in rules:
                if rule.findtext("Status") not in ("Enabled", "Disabled"):
                    raise CosError(400, "InvalidArgument", "rule Status must be Enabled/Disabled")
        if sub == "logging":
            target = root.findtext("LoggingEnabled/TargetBucket")
            if root.find("LoggingEnabled") is not None:
                with self.account.lock:
                    exists = target in self.account.buckets
                if not exists:
                    raise CosError(
                        400, "InvalidTargetBucketForLogging", "The target bucket does not exist."
                    )

    def _list(
        self, req: HttpRequest, caller: Caller, bucket: Bucket
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        prefix = req.param("prefix") or ""
        delimiter = req.param("delimiter") or ""
        marker = req.param("marker") or ""
        encoding = req.param("encoding-type") or ""
        if encoding not in ("", "url"):
            raise CosError(400, "InvalidArgument", "encoding-type must be url")
        try:
            max_keys = int(req.param("max-keys") or "1000")
        except ValueError:
            raise CosError(400, "InvalidArgument", "max-keys must be an integer") from None
        if not max_keys >= 0:
            raise CosError(400, "InvalidArgument", "max-keys must be non-negative")
        max_keys = min(max_keys, 1000)
        self._authorize(
            caller,
            bucket,
            "GetBucket",
            None,
            req,
            extra={"cos:prefix": quote(prefix, safe="-_.~")},
        )
        with self.account.lock:
            keys = sorted(k for k in bucket.objects if k.startswith(prefix) and k > marker)
            snapshot = {k: bucket.objects[k] for k in keys}
        contents: list[str] = []
        prefixes: list[str] = []
        truncated = False
        last = ""
        for k in keys:
            if delimiter and marker.endswith(delimiter) and k.startswith(marker):
                continue
            if delimiter:
                idx = k.find(delimiter, len(prefix))
                if idx >= 0:
                    cp = k[: idx + len(delimiter)]
                    if prefixes and prefixes[-1] == cp:
                        continue
                    if len(contents) + len(prefixes) >= max_keys:
                        truncated = True
                        break
                    prefixes.append(cp)
                    last = cp
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            contents.append(k)
            last = k

        def enc(s: str) -> str:
            return quote(s, safe="/-_.~") if encoding == "url" else s

        root = ET.Element("ListBucketResult")
        _sub(root, "Name", bucket.name)
        if encoding:
            _sub(root, "EncodingType", encoding)
        _sub(root, "Prefix", enc(prefix))
        _sub(root, "Marker", enc(marker))
        _sub(root, "MaxKeys", str(max_keys))
        if delimiter:
            _sub(root, "Delimiter", enc(delimiter))
        _sub(root, "IsTruncated", "true" if truncated else "false")
        if truncated:
            _sub(root, "NextMarker", enc(last))
        for k in contents:
            obj = snapshot[k]
            c = _sub(root, "Contents")
            _sub(c, "Key", enc(k))
            _sub(c, "LastModified", _iso(obj.last_modified))
            _sub(c, "ETag", obj.etag)
            _sub(c, "Size", str(len(obj.data)))
            owner = _sub(c, "Owner")
            _sub(owner, "ID", self.account.appid)
            _sub(owner, "DisplayName", self.account.appid)
            _sub(c, "StorageClass", "STANDARD")
        for p in prefixes:
            cp_el = _sub(root, "CommonPrefixes")
            _sub(cp_el, "Prefix", enc(p))
        return 200, [("Content-Type", "application/xml")], _xml(root)

    def _delete_multiple(
        self, req: HttpRequest, caller: Caller, bucket: Bucket
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        md5 = req.header("content-md5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(req.body).digest()).decode():
            raise CosError(400, "BadDigest", "The Content-MD5 you specified did not match.")
        root = _parse_xml(req.body)
        quiet = (root.findtext("Quiet") or "false").lower() == "true"
        keys = [o.findtext("Key") or "" for o in root.findall("Object")]
        if not keys or len(keys) > 1000:
            raise CosError(400, "MalformedXML", "Delete needs 1-1000 Object entries")
        out = ET.Element("DeleteResult")
        for k in keys:
            try:
                self._authorize(caller, bucket, "DeleteObject", k, req)
            except CosError as err:
                e = _sub(out, "Error")
                _sub(e, "Key", k)
                _sub(e, "Code", err.code)
                _sub(e, "Message", err.message)
                continue
            with self.account.lock:
                bucket.objects.pop(k, None)
            if not quiet:
                d = _sub(out, "Deleted")
                _sub(d, "Key", k)
        return 200, [("Content-Type", "application/xml")], _xml(out)

    # objects ------------------------------------------------------------------------------
    def _object_op(
        self, req: HttpRequest, caller: Caller, bucket: Bucket, key: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        m = req.method
        acct = self.account
        if req.has_param("tagging"):
            verb = {"PUT": "Put", "GET": "Get", "DELETE": "Delete"}.get(m)
            if verb is None:
                raise CosError(405, "MethodNotAllowed", "The method is not allowed.")
            self._authorize(caller, bucket, f"{verb}ObjectTagging", key, req)
            with acct.lock:
                obj = bucket.objects.get(key)
                if obj is None:
                    raise CosError(404, "NoSuchKey", "The specified key does not exist.")
                if m == "PUT":
                    root = _parse_xml(req.body)
                    tags = [
                        (t.findtext("Key") or "", t.findtext("Value") or "")
                        for t in root.findall("TagSet/Tag")
                    ]
                    if len(tags) > 10:
                        raise CosError(400, "BadRequest", "at most 10 tags per object")
                    obj.tags = tags
                    return 200, [], b""
                if m == "DELETE":
                    obj.tags = []
                    return 204, [], b""
                root = ET.Element("Tagging")
                ts = _sub(root, "TagSet")
                for tk, tv in obj.tags:
                    t = _sub(ts, "Tag")
                    _sub(t, "Key", tk)
                    _sub(t, "Value", tv)
                return 200, [("Content-Type", "application/xml")], _xml(root)
        if m == "PUT":
            return self._put(req, caller, bucket, key)
        if m in ("GET", "HEAD"):
            self._authorize(caller, bucket, "GetObject" if m == "GET" else "HeadObject", key, req)
            with acct.lock:
                obj = bucket.objects.get(key)
            if obj is None:
                raise CosError(404, "NoSuchKey", "The specified key does not exist.")
            if_match = req.header("if-match")
            if if_match is not None and if_match not in (obj.etag, "*"):
                raise CosError(412, "PreconditionFailed", "If-Match does not match.")
            if_none = req.header("if-none-match")
            if if_none is not None and if_none in (obj.etag, "*"):
                return 304, [("ETag", obj.etag)], b""
            headers = [
                ("ETag", obj.etag),
                ("Content-Type", obj.content_type),
                ("Last-Modified", _http_date(obj.last_modified)),
                *obj.meta.items(),
            ]
            if m == "HEAD":
                headers.append(("Content-Length", str(len(obj.data))))
                return 200, headers, b""
            return 200, headers, obj.data
        if m == "DELETE":
            self._authorize(caller, bucket, "DeleteObject", key, req)
            with acct.lock:
                bucket.objects.pop(key, None)
            return 204, [], b""
        raise CosError(501, "NotImplemented", "This request is not implemented by the double.")

    def _put(
        self, req: HttpRequest, caller: Caller, bucket: Bucket, key: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.header("x-cos-copy-source") is not None:
            raise CosError(501, "NotImplemented", "PUT Object - Copy is not emulated.")
        self._authorize(caller, bucket, "PutObject", key, req)
        md5_header = req.header("content-md5")
        digest = hashlib.md5(req.body).digest()
        if md5_header is not None and md5_header != base64.b64encode(digest).decode():
            raise CosError(400, "BadDigest", "The Content-MD5 you specified did not match.")
        meta = {k: v for k, v in req.headers.items() if k.startswith("x-cos-meta-")}
        if sum(len(k) + len(v) for k, v in meta.items()) > _MAX_META:
            raise CosError(400, "MetadataTooLarge", "user metadata exceeds 2 KB")
        forbid = (req.header("x-cos-forbid-overwrite") or "").lower() == "true"
        if_none = req.header("if-none-match")
        if_match = req.header("if-match")
        etag = f'"{digest.hex()}"'
        with self.account.lock:
            current = bucket.objects.get(key)
            if forbid and current is not None and bucket.versioning is None:
                raise CosError(409, "FileAlreadyExists", "The object already exists.")
            if current is not None and if_none in ("*", current.etag):
                raise CosError(412, "PreconditionFailed", "If-None-Match matched.")
            if if_match is not None and (current is None or if_match not in (current.etag, "*")):
                raise CosError(412, "PreconditionFailed", "If-Match does not match.")
            bucket.objects[key] = CosObject(
                data=bytes(req.body),
                etag=etag,
                last_modified=time.time(),
                content_type=req.header("content-type") or "application/octet-stream",
                meta=meta,
            )
        return 200, [("ETag", etag)], b""
