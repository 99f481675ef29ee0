//! `happening token`: a development token, printed.

use std::process::ExitCode;

use happening_http::auth::{self, MintRequest};

use crate::cli::Token;

pub fn run(t: Token) -> ExitCode {
    let req = MintRequest { sub: t.sub, email: t.email, name: t.name, ttl_secs: t.ttl, issuer: t.issuer, audience: t.audience };
    println!("{}", auth::mint(&t.secret, &req));
    ExitCode::SUCCESS
}
