//! Windows process control (job objects, console control events, creation-time identity).
//!
//! Not implemented yet: warden does not build for Windows until issue 10 lands. Failing
//! the build here is deliberate, so that a Windows build can never silently lack process
//! control.

compile_error!(
    "warden does not build for Windows yet: process control for Windows is tracked in issue 10"
);
