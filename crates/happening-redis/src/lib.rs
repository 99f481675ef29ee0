//! happening-redis: not yet implemented (see the issue tracker).
