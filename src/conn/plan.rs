//! From a parsed request to a response plan: status, head and body.
//!
//! Everything here is decided before a byte is sent: the path is normalised, the file opened
//! beneath the root, preconditions evaluated (RFC 9110 §13.2.2), then ranges (§14). Outcomes
//! such as 304, 412 and 416 are values of the planning, not errors.

use std::borrow::Cow;
use std::rc::Rc;

use monoio::time::Instant;
use smallvec::smallvec;

use tracing::{debug, info, warn};

use crate::body::{Body, Segment, Segments};
use crate::conn::Context;
use crate::fs::cache::{CachedFile, Lookup};
use crate::fs::path::{self, PathError};
use crate::http::conditional::{self, Outcome, Preconditions, Validators};
use crate::http::cors::Cors;
use crate::http::encoding::{self, Coding};
use crate::http::multipart::{self, Piece};
use crate::http::range::{self, RangeDecision};
use crate::http::request::{Method, Request};
use crate::http::response::{push_field, HeadWriter, Status, ALLOW};

/// What to send for one request.
#[derive(Debug)]
pub struct Plan {
    /// The status (for logs and counters).
    pub status: Status,
    /// The complete response head.
    pub head: Vec<u8>,
    /// The body; not sent when `head_only`.
    pub body: Body,
    /// HEAD request or bodiless status: send the head alone.
    pub head_only: bool,
    /// Close the connection after this response.
    pub close: bool,
}

/// Plans the response to `req`. `close` is whether the connection ends after it.
pub fn plan(ctx: &Context, req: &Request, close: bool) -> Plan {
    let keep10 = req.http10_keep_alive() && !close;
    match req.method {
        Method::Get | Method::Head => {}
        Method::Options => {
            // RFC 9110 §9.3.7: OPTIONS * or a resource: what the server allows. With CORS on, a
            // preflight (Fetch §3.2.2) also gets the Access-Control-Allow-* answer.
            let mut head = HeadWriter::new(Status::NoContent, ctx.date.borrow_mut().now());
            head.field("Allow", ALLOW);
            if let Some(cors) = &ctx.config.cors {
                let origin = req.fields.origin.as_deref();
                let mut lines = Vec::new();
                if Cors::is_preflight(origin, req.fields.access_control_request_method.as_deref()) {
                    cors.write_preflight_headers(origin, &mut lines);
                } else {
                    cors.write_headers(origin, &mut lines);
                }
                head.raw(&lines);
            }
            return Plan::new(
                Status::NoContent,
                head.finish(close, keep10),
                Body::empty(),
                true,
                close,
            );
        }
        Method::NotAllowed => {
            return error_with(ctx, Status::MethodNotAllowed, req, close, |h| {
                h.field("Allow", ALLOW);
            })
        }
        Method::Unknown => return error(ctx, Status::NotImplemented, req, close),
    }
    if req.unknown_expectation {
        // RFC 9110 §10.1.1: an expectation we cannot meet.
        return error(ctx, Status::ExpectationFailed, req, close);
    }
    let normalized = match path::normalize(&req.target) {
        Ok(n) => n,
        Err(e) => {
            if e == PathError::AboveRoot {
                info!(target = %String::from_utf8_lossy(&req.target), "refused: path climbs above the root");
            } else {
                info!(target = %String::from_utf8_lossy(&req.target), error = %e, "refused: bad request target");
            }
            return error(ctx, Status::BadRequest, req, close);
        }
    };
    if normalized.hidden && !ctx.config.serve_dotfiles {
        return error(ctx, Status::NotFound, req, close);
    }
    let lookup = ctx.files.borrow_mut().lookup(
        &ctx.root,
        &normalized.relative,
        normalized.trailing_slash,
        &ctx.config.index,
        Instant::now(),
    );
    match lookup {
        Ok(Lookup::File(entry)) => {
            let representation = select_representation(ctx, req, entry);
            file_response(ctx, req, close, representation)
        }
        Ok(Lookup::Directory) => {
            let location = normalized.directory_location();
            error_with(ctx, Status::MovedPermanently, req, close, |h| {
                h.field("Location", &location);
            })
        }
        Err(e) => {
            let status = e.status();
            match status {
                Status::NotFound => debug!(error = %e, "not found"),
                Status::Forbidden => info!(error = %e, "forbidden"),
                _ => warn!(error = %e, "open failed"),
            }
            error(ctx, status, req, close)
        }
    }
}

/// The representation chosen for a request: the file itself or a precompressed variant.
struct Representation {
    entry: Rc<CachedFile>,
    /// The extension the media type and caching rules go by (the original name's).
    extension: Option<Rc<str>>,
    /// The content coding of a precompressed variant.
    coding: Option<Coding>,
    /// The response varies with `Accept-Encoding` (a precompressible type).
    vary_encoding: bool,
}

/// Picks `FILE.br` or `FILE.gz` when the client accepts it and it exists, no older than `FILE`
/// (RFC 9110 §12.5.3); ranges and validators then apply to that variant, the representation
/// actually sent.
fn select_representation(ctx: &Context, req: &Request, entry: Rc<CachedFile>) -> Representation {
    let extension = entry.extension.clone();
    let vary_encoding =
        ctx.config.precompressed && encoding::precompressible_extension(extension.as_deref());
    if let (true, Some(accept)) = (vary_encoding, req.fields.accept_encoding.as_deref()) {
        let accepted = encoding::parse_accept_encoding(accept);
        let variant = |coding: Coding| {
            let mut p = entry.path.clone();
            p.extend_from_slice(coding.suffix().as_bytes());
            let found = ctx.files.borrow_mut().lookup(&ctx.root, &p, false, "", Instant::now());
            match found {
                // A variant older than the file is stale (a live playlist rewritten without
                // its .gz): the file as it is, rather than an old version compressed.
                Ok(Lookup::File(v)) if v.modified >= entry.modified => Some(v),
                _ => None,
            }
        };
        // The most preferred accepted coding that has a variant on disk (§12.4.2 weights).
        for coding in encoding::preference(&accepted) {
            if let Some(entry) = variant(coding) {
                return Representation { entry, extension, coding: Some(coding), vary_encoding };
            }
        }
    }
    Representation { entry, extension, coding: None, vary_encoding }
}

fn file_response(ctx: &Context, req: &Request, close: bool, rep: Representation) -> Plan {
    let keep10 = req.http10_keep_alive() && !close;
    let Representation { entry, extension, coding, vary_encoding } = rep;
    let len = entry.len;
    let etag = representation_etag(&entry.etag, coding);
    let etag = etag.as_ref();
    let last_modified = entry.last_modified.as_str();
    let content_type = ctx.mime.by_extension_of(extension.as_deref());
    // Fields every answer about this representation carries (200, 206, 304; RFC 9110 §15.4.5).
    let mut common = Vec::new();
    if let Some(cc) = ctx.cache.by_extension_of(extension.as_deref()) {
        push_field(&mut common, "Cache-Control", cc);
    }
    if vary_encoding {
        push_field(&mut common, "Vary", "Accept-Encoding");
    }
    // Error answers (412, 416) get the CORS lines from `error_with`.
    let caching = common.len();
    write_cors(ctx, req, &mut common);
    let validators = Validators { etag, last_modified: entry.modified };
    let fields = &req.fields;
    let pre = Preconditions {
        if_match: fields.if_match.as_deref(),
        if_none_match: fields.if_none_match.as_deref(),
        if_modified_since: fields.if_modified_since.as_deref(),
        if_unmodified_since: fields.if_unmodified_since.as_deref(),
        if_range: fields.if_range.as_deref(),
    };
    let range_allowed = match conditional::evaluate(&pre, &validators) {
        Outcome::Proceed { range_allowed } => range_allowed,
        Outcome::NotModified => {
            // RFC 9110 §15.4.5: the validators and caching fields a 200 would carry, no content.
            let mut head = HeadWriter::new(Status::NotModified, ctx.date.borrow_mut().now());
            head.field("ETag", etag).field("Last-Modified", last_modified).raw(&common);
            return Plan::new(
                Status::NotModified,
                head.finish(close, keep10),
                Body::empty(),
                true,
                close,
            );
        }
        Outcome::PreconditionFailed => {
            return error_with(ctx, Status::PreconditionFailed, req, close, |h| {
                h.raw(&common[..caching]);
            })
        }
    };
    // RFC 9110 §14.2: Range is defined for GET only; ignored for HEAD.
    let decision = match &fields.range {
        Some(value) if req.method == Method::Get && range_allowed => {
            range::evaluate(value, len, ctx.config.max_ranges)
        }
        _ => RangeDecision::Full,
    };
    let head_only = req.method == Method::Head;
    let multi = matches!(decision, RangeDecision::Multi(_));
    let (status, mut head, body) = match decision {
        RangeDecision::Full => {
            let mut head = HeadWriter::new(Status::Ok, ctx.date.borrow_mut().now());
            head.content_length(len).field("Content-Type", content_type);
            (Status::Ok, head, file_body(ctx, &entry, smallvec![Segment::File { offset: 0, len }]))
        }
        RangeDecision::Single(r) => {
            let mut head = HeadWriter::new(Status::PartialContent, ctx.date.borrow_mut().now());
            head.content_length(r.len)
                .field("Content-Type", content_type)
                .field("Content-Range", &r.content_range(len));
            let body =
                file_body(ctx, &entry, smallvec![Segment::File { offset: r.start, len: r.len }]);
            (Status::PartialContent, head, body)
        }
        RangeDecision::Multi(ranges) => {
            let seq = ctx.boundary_seq.get();
            ctx.boundary_seq.set(seq.wrapping_add(1));
            let boundary = multipart::boundary(seq ^ (ctx.worker_id as u64) << 48);
            // The coding of a precompressed variant goes into each part (see
            // `multipart::plan_with_fields`), not on the multipart body.
            let coding_field = coding.map(|c| ("Content-Encoding", c.token()));
            let part_fields = coding_field.as_slice();
            let mp =
                multipart::plan_with_fields(&ranges, content_type, part_fields, len, &boundary);
            let mut head = HeadWriter::new(Status::PartialContent, ctx.date.borrow_mut().now());
            head.content_length(mp.content_length).field("Content-Type", &mp.content_type);
            let segments = mp
                .pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Bytes(b) => Segment::Bytes(b),
                    Piece::File(r) => Segment::File { offset: r.start, len: r.len },
                })
                .collect();
            (Status::PartialContent, head, file_body(ctx, &entry, segments))
        }
        RangeDecision::NotSatisfiable => {
            // RFC 9110 §15.5.17: Content-Range with the current length.
            let unsatisfied = range::unsatisfied_content_range(len);
            return error_with(ctx, Status::RangeNotSatisfiable, req, close, |h| {
                h.field("Content-Range", &unsatisfied).raw(&common[..caching]);
            });
        }
    };
    if let (Some(coding), false) = (coding, multi) {
        head.field("Content-Encoding", coding.token());
    }
    head.field("Last-Modified", last_modified)
        .field("ETag", etag)
        .field("Accept-Ranges", accept_ranges(ctx.config.max_ranges))
        .raw(&common);
    Plan::new(status, head.finish(close, keep10), body, head_only, close)
}

/// The entity-tag of the representation sent. A precompressed variant is a different
/// representation and needs an entity-tag no other representation of the resource has
/// (RFC 9110 §8.8.3); the variant file's own tag (its size and modification time) could equal
/// its sibling's — `gzip -k` and `brotli -k` keep the original's time — so the coding is added
/// to it: `"1a-5f3c"` becomes `"1a-5f3c-gzip"`.
fn representation_etag(file_etag: &str, coding: Option<Coding>) -> Cow<'_, str> {
    match (coding, file_etag.strip_suffix('"')) {
        (Some(coding), Some(open)) => Cow::Owned(format!("{open}-{}\"", coding.token())),
        _ => Cow::Borrowed(file_etag),
    }
}

/// The `Accept-Ranges` value (RFC 9110 §14.3): `none` when ranges are turned off
/// (`--max-ranges 0`), so that clients do not try.
fn accept_ranges(max_ranges: usize) -> &'static str {
    if max_ranges == 0 {
        "none"
    } else {
        "bytes"
    }
}

/// Appends the CORS lines for `req` when `--cors` is on.
fn write_cors(ctx: &Context, req: &Request, out: &mut Vec<u8>) {
    if let Some(cors) = &ctx.config.cors {
        cors.write_headers(req.fields.origin.as_deref(), out);
    }
}

/// The body for `segments` of a cached file: slices of its cached content when it has some and
/// the strategy allows (no syscall but the send), else ranges of its descriptor.
fn file_body(ctx: &Context, entry: &CachedFile, segments: Segments) -> Body {
    match &entry.content {
        Some(content) if ctx.config.body_strategy.uses_cached_content() => {
            let mut segments = segments;
            for s in &mut segments {
                if let Segment::File { offset, len } = *s {
                    let start = usize::try_from(offset).expect("cached content offset");
                    let end = start + usize::try_from(len).expect("cached content length");
                    *s = Segment::Bytes(content.slice(start..end));
                }
            }
            Body { file: None, segments }
        }
        _ => Body { file: Some(Rc::clone(&entry.file)), segments },
    }
}

/// An error response: a short text body naming the status.
pub fn error(ctx: &Context, status: Status, req: &Request, close: bool) -> Plan {
    error_with(ctx, status, req, close, |_| {})
}

fn error_with(
    ctx: &Context,
    status: Status,
    req: &Request,
    close: bool,
    extra: impl FnOnce(&mut HeadWriter),
) -> Plan {
    let plan = status_response(ctx, status, close, req.http10_keep_alive() && !close, |h| {
        extra(h);
        // A player on another origin can read the status of a failed request (a missing
        // segment is a 404, not an opaque network error) only when the error carries CORS too.
        let mut cors = Vec::new();
        write_cors(ctx, req, &mut cors);
        h.raw(&cors);
    });
    Plan { head_only: req.method == Method::Head || plan.head_only, ..plan }
}

/// A response with a short text body for `status`, for requests that could not be parsed too.
pub fn status_response(
    ctx: &Context,
    status: Status,
    close: bool,
    http10_keep_alive: bool,
    extra: impl FnOnce(&mut HeadWriter),
) -> Plan {
    let text = format!("{} {}\n", status.code(), status.reason());
    let mut head = HeadWriter::new(status, ctx.date.borrow_mut().now());
    head.content_length(text.len() as u64).field("Content-Type", "text/plain; charset=utf-8");
    extra(&mut head);
    Plan::new(status, head.finish(close, http10_keep_alive), Body::bytes(text), false, close)
}

impl Plan {
    fn new(status: Status, head: Vec<u8>, body: Body, head_only: bool, close: bool) -> Self {
        Self { status, head, body, head_only: head_only || status.is_bodiless(), close }
    }
}
