//! happening-amqp: not yet implemented (see the issue tracker).
