//! What libgit2's TLS connections trust and present, per connection.
//!
//! libgit2 makes every TLS connection from one process-wide `SSL_CTX`,
//! `git__ssl_ctx` (a global of its OpenSSL stream,
//! `src/libgit2/streams/openssl.c`), with the OpenSSL built into this very
//! binary, and has no option for a client certificate nor for a CA of some
//! servers only. Two OpenSSL callbacks set on that context close the gap:
//! one verifies a server's chain with the context's CAs and, failing that,
//! with the CAs of that server's `http.<url>.sslCAInfo`/`sslCAPath`; the
//! other presents the client certificate of that server's settings when it
//! asks for one. libgit2 connects, handshakes and transfers on the thread
//! that asked it to, right after `tls::before_connecting` named the
//! server's settings on that same thread (see [`set_for_this_thread`]).
//!
//! The symbol is libgit2's internal, like the struct layout `stream.rs`
//! mirrors: both are tied to the libgit2 that libgit2-sys vendors, which is
//! why Cargo.toml pins it exactly. The OpenSSL functions declared below are
//! public ones that openssl-sys does not declare.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

use foreign_types::ForeignTypeRef;
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::X509Store;
use openssl::x509::{X509Ref, X509StoreContext, X509VerifyResult, X509};
use openssl_sys::{stack_st_X509, EVP_PKEY, SSL, SSL_CTX, X509 as RawX509, X509_STORE_CTX};

use super::client_cert::Identity;

extern "C" {
    /// Created by libgit2's initialisation, never replaced afterwards.
    static git__ssl_ctx: *mut SSL_CTX;
    fn SSL_CTX_set_cert_verify_callback(
        ctx: *mut SSL_CTX,
        cb: Option<unsafe extern "C" fn(*mut X509_STORE_CTX, *mut c_void) -> c_int>,
        arg: *mut c_void,
    );
    fn SSL_CTX_set_cert_cb(
        ctx: *mut SSL_CTX,
        cb: Option<unsafe extern "C" fn(*mut SSL, *mut c_void) -> c_int>,
        arg: *mut c_void,
    );
    fn X509_STORE_CTX_get0_cert(ctx: *const X509_STORE_CTX) -> *mut RawX509;
    fn X509_STORE_CTX_get0_untrusted(ctx: *const X509_STORE_CTX) -> *mut stack_st_X509;
    fn SSL_use_cert_and_key(
        ssl: *mut SSL,
        x509: *mut RawX509,
        key: *mut EVP_PKEY,
        chain: *mut stack_st_X509,
        replace: c_int,
    ) -> c_int;
}

/// What the connections of one server are given beyond the context's.
#[derive(Default, Clone)]
pub(super) struct ForServer {
    /// CAs trusted for it only (`http.<url>.sslCAInfo`, `.sslCAPath`).
    pub also_trusted: Option<Arc<X509Store>>,
    /// The client certificate it gets if it asks for one.
    pub identity: Option<Arc<Identity>>,
}

thread_local! {
    static FOR_SERVER: RefCell<ForServer> = RefCell::new(ForServer::default());
}

/// Set the callbacks on libgit2's context. Called once, after libgit2 has
/// initialised and before any connection.
pub(super) fn install() -> Result<(), String> {
    // SAFETY: a plain read of libgit2's pointer, set once as libgit2
    // initialised, before this is called.
    let ctx = unsafe { git__ssl_ctx };
    if ctx.is_null() {
        return Err("libgit2 has no TLS context".into());
    }
    // SAFETY: `ctx` is libgit2's live context, not yet used by any
    // connection; both callbacks are `extern "C"` functions of the
    // signatures OpenSSL declares, and take no argument.
    unsafe {
        SSL_CTX_set_cert_verify_callback(ctx, Some(verify), std::ptr::null_mut());
        SSL_CTX_set_cert_cb(ctx, Some(present), std::ptr::null_mut());
    }
    Ok(())
}

/// What the next connections made on this thread are given.
pub(super) fn set_for_this_thread(for_server: ForServer) {
    FOR_SERVER.with(|f| *f.borrow_mut() = for_server);
}

fn for_this_thread() -> ForServer {
    FOR_SERVER.with(|f| f.try_borrow().map(|f| f.clone()).unwrap_or_default())
}

/// OpenSSL's verification of a server's chain (libgit2 reads its result,
/// `SSL_get_verify_result`, then checks the name): with the context's CAs,
/// then, if that failed, with the server's own.
unsafe extern "C" fn verify(ctx: *mut X509_STORE_CTX, _: *mut c_void) -> c_int {
    // SAFETY: `ctx` is the store context OpenSSL passes, set up with the
    // context's store, the server's certificate and the chain it sent.
    let first = unsafe { openssl_sys::X509_verify_cert(ctx) };
    if first == 1 {
        return 1;
    }
    let Some(store) = for_this_thread().also_trusted else {
        return first;
    };
    // SAFETY: pointers into `ctx`, valid while it is; the certificate is
    // set (OpenSSL verifies a chain it received), the chain may be null.
    let (cert, sent) = unsafe {
        (
            X509_STORE_CTX_get0_cert(ctx),
            X509_STORE_CTX_get0_untrusted(ctx),
        )
    };
    if cert.is_null() {
        return first;
    }
    // SAFETY: borrowed for this call only, while `ctx` holds them.
    let cert = unsafe { X509Ref::from_ptr(cert) };
    let sent = (!sent.is_null()).then(|| unsafe { StackRef::<X509>::from_ptr(sent) });
    if verified_by(&store, cert, sent) {
        // SAFETY: as above; OpenSSL takes the result from `ctx`.
        unsafe { openssl_sys::X509_STORE_CTX_set_error(ctx, X509VerifyResult::OK.as_raw()) };
        return 1;
    }
    first
}

/// Whether `cert` chains up to a CA of `store`, through `sent`.
fn verified_by(store: &X509Store, cert: &X509Ref, sent: Option<&StackRef<X509>>) -> bool {
    let Ok(mut context) = X509StoreContext::new() else {
        return false;
    };
    let empty;
    let sent = match sent {
        Some(sent) => sent,
        None => match Stack::new() {
            Ok(stack) => {
                empty = stack;
                &empty
            }
            Err(_) => return false,
        },
    };
    context
        .init(store, cert, sent, |c| c.verify_cert())
        .unwrap_or(false)
}

/// OpenSSL's question, as a server asks for a client certificate: the one
/// of this thread's server, if any (else none is presented, or the
/// context's).
unsafe extern "C" fn present(ssl: *mut SSL, _: *mut c_void) -> c_int {
    let Some(identity) = for_this_thread().identity else {
        return 1;
    };
    let Some((cert, rest)) = identity.chain.split_first() else {
        return 1;
    };
    let Ok(mut chain) = Stack::<X509>::new() else {
        return 0;
    };
    for c in rest {
        if chain.push(c.clone()).is_err() {
            return 0;
        }
    }
    // SAFETY: `ssl` is the connection OpenSSL asks for; the certificate,
    // key and chain are live, and OpenSSL takes references of its own.
    unsafe { SSL_use_cert_and_key(ssl, cert.as_ptr(), identity.key.as_ptr(), chain.as_ptr(), 1) }
}
