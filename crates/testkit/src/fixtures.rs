//! Speech fixtures: raw mu-law 8 kHz made by `scripts/make-speech-fixtures.sh`.

/// "Hello, I would like to book an appointment for Monday at ten in the morning, please."
pub const CALLER_BOOKING: &[u8] = include_bytes!("../fixtures/caller_booking.ulaw");
/// "Wait, sorry, can I ask something else?"
pub const CALLER_INTERRUPT: &[u8] = include_bytes!("../fixtures/caller_interrupt.ulaw");
/// A ten-second agent answer about opening hours.
pub const AGENT_REPLY: &[u8] = include_bytes!("../fixtures/agent_reply.ulaw");
/// The transcript of [`AGENT_REPLY`].
pub const AGENT_REPLY_TEXT: &str = "Of course. Our opening hours are nine to five on weekdays, and I can book you in for Monday at ten. Shall I go ahead and reserve that time for you now?";
/// "Thanks for calling. Goodbye!"
pub const AGENT_SHORT: &[u8] = include_bytes!("../fixtures/agent_short.ulaw");
/// The transcript of [`AGENT_SHORT`].
pub const AGENT_SHORT_TEXT: &str = "Thanks for calling. Goodbye!";
