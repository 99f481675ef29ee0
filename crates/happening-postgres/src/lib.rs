//! happening-postgres: not yet implemented (see the issue tracker).
