//! happening-http: not yet implemented (see the issue tracker).
