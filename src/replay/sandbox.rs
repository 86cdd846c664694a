//! The sandbox (stub).
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Sandbox {}

impl Sandbox {
    pub fn enter(&self, _command: &mut Command) {}
}
