//! makescope's own exit statuses. When make fails, `makescope make` exits with make's
//! status (or dies of make's signal); these are the statuses that are makescope's.
//!
//! What it must never do: hold anything but the numbers and what they mean; they are
//! part of the interface scripts rely on (README).

/// makescope's own errors: bad input, an unreadable record, a make that would not start.
pub const ERROR: u8 = 2;

/// make succeeded but a user hook raised.
pub const HOOKS_FAILED: u8 = 3;

/// `replay --sandbox`: the command succeeded but touched a path outside its record
/// (named on stderr): the record's dependencies are not complete.
pub const SANDBOX_MISSED: u8 = 4;
