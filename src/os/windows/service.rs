//! The Windows service: registering warden with the service control manager (SCM),
//! starting and stopping it, and `run`, the entry point the SCM starts.
//!
//! While running as a service, a stop (or the machine shutting down) cancels one
//! `CancellationToken`: warden then shuts down exactly as on Ctrl-C, stopping (or leaving)
//! its programs, while the SCM is told how long that may take.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name in the SCM (`sc query warden`).
pub const NAME: &str = "warden";
const DISPLAY_NAME: &str = "warden supervisor";
const DESCRIPTION: &str =
    "Supervises, monitors and schedules game servers and other long-running programs.";

/// What the service runs once started: warden's server until the token is cancelled.
pub type Body =
    Box<dyn FnOnce(CancellationToken) -> Result<(), Box<dyn Error + Send + Sync>> + Send>;

/// The body and stop wait hint handed from `run` to the SCM's callback thread.
static PENDING: Mutex<Option<(Duration, Body)>> = Mutex::new(None);

// Win32 error codes the SCM answers with, turned into plain advice.
const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_EXISTS: i32 = 1073;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
const ERROR_SERVICE_ALREADY_RUNNING: i32 = 1056;

fn os_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

/// Turns a windows-service error into an io::Error saying what was being done and, for
/// the usual causes, what to do about it.
fn fail(what: &str, e: windows_service::Error) -> io::Error {
    let advice = match os_code(&e) {
        Some(ERROR_ACCESS_DENIED) => " (run this from an Administrator prompt)",
        Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            " (the service is not installed: warden service install)"
        }
        Some(ERROR_SERVICE_EXISTS) => " (it is already installed; warden service uninstall first)",
        _ => "",
    };
    let detail = match &e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    };
    io::Error::other(format!("{what}: {detail}{advice}"))
}

/// `%ProgramData%\warden`: where a service keeps its data unless told otherwise.
pub fn default_data_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    Ok(base.join("warden"))
}

fn manager(access: ServiceManagerAccess) -> io::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| fail("cannot connect to the service manager", e))
}

/// Registers the service: `exe` with `args`, started automatically at boot as LocalSystem,
/// restarted by the SCM if it crashes, and given `preshutdown` to stop its programs when
/// the machine shuts down.
pub fn install(exe: PathBuf, args: Vec<OsString>, preshutdown: Duration) -> io::Result<()> {
    let mgr = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: args,
        dependencies: Vec::new(),
        account_name: None,
        account_password: None,
    };
    let service = mgr
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| fail("cannot install the service", e))?;
    // The rest is comfort: a service without it still works, so failures are warnings.
    if let Err(e) = service.set_description(DESCRIPTION) {
        tracing::warn!(error = %fail("cannot set the description", e), "service installed anyway");
    }
    let restart = ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(10),
    };
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart.clone(), restart.clone(), restart]),
    };
    if let Err(e) = service.update_failure_actions(actions) {
        tracing::warn!(error = %fail("cannot set restart-on-crash", e), "service installed anyway");
    }
    if let Err(e) = service.set_preshutdown_timeout(preshutdown) {
        tracing::warn!(error = %fail("cannot set the shutdown timeout", e), "service installed anyway");
    }
    Ok(())
}

/// Stops the service if it runs (waiting up to `timeout`) and removes it.
pub fn uninstall(timeout: Duration) -> io::Result<()> {
    let mgr = manager(ServiceManagerAccess::CONNECT)?;
    let service = mgr
        .open_service(
            NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| fail("cannot open the service", e))?;
    stop_and_wait(&service, timeout)?;
    service
        .delete()
        .map_err(|e| fail("cannot remove the service", e))
}

/// Starts the service and waits until it reports running (or fails).
pub fn start(timeout: Duration) -> io::Result<()> {
    let mgr = manager(ServiceManagerAccess::CONNECT)?;
    let service = mgr
        .open_service(NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::START)
        .map_err(|e| fail("cannot open the service", e))?;
    match service.start(&[] as &[&OsStr]) {
        Ok(()) => {}
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_ALREADY_RUNNING) => return Ok(()),
        Err(e) => return Err(fail("cannot start the service", e)),
    }
    let state = wait_state(&service, timeout, |s| s != ServiceState::StartPending)?;
    if state == ServiceState::Running {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the service did not start (state {state:?}); see its log in the data directory's warden-logs folder"
        )))
    }
}

/// Stops the service and waits up to `timeout` for it to have stopped.
pub fn stop(timeout: Duration) -> io::Result<()> {
    let mgr = manager(ServiceManagerAccess::CONNECT)?;
    let service = mgr
        .open_service(NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)
        .map_err(|e| fail("cannot open the service", e))?;
    stop_and_wait(&service, timeout)
}

fn stop_and_wait(service: &windows_service::service::Service, timeout: Duration) -> io::Result<()> {
    match service.stop() {
        Ok(_) => {}
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE) => return Ok(()),
        Err(e) => return Err(fail("cannot stop the service", e)),
    }
    let state = wait_state(service, timeout, |s| s == ServiceState::Stopped)?;
    if state == ServiceState::Stopped {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the service did not stop within {} s (state {state:?})",
            timeout.as_secs()
        )))
    }
}

fn wait_state(
    service: &windows_service::service::Service,
    timeout: Duration,
    done: impl Fn(ServiceState) -> bool,
) -> io::Result<ServiceState> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = service
            .query_status()
            .map_err(|e| fail("cannot query the service", e))?
            .current_state;
        if done(state) || Instant::now() >= deadline {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

define_windows_service!(ffi_service_main, service_main);

/// Runs as the service: hands control to the SCM, which calls back on another thread;
/// returns when the service has stopped. `stop_wait` is how long a stop may take.
pub fn run(stop_wait: Duration, body: Body) -> io::Result<()> {
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some((stop_wait, body));
    service_dispatcher::start(NAME, ffi_service_main).map_err(|e| {
        if os_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            io::Error::other(
                "`warden service run` is started by the Windows service manager; to run warden in a console use `warden serve`",
            )
        } else {
            fail("cannot start the service dispatcher", e)
        }
    })
}

enum Msg {
    /// The SCM asked the service to stop.
    Stop,
    /// The body returned (true: successfully).
    Done(bool),
}

fn status(state: ServiceState, wait_hint: Duration, ok: bool) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP
                | ServiceControlAccept::SHUTDOWN
                | ServiceControlAccept::PRESHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: if ok {
            ServiceExitCode::NO_ERROR
        } else {
            ServiceExitCode::ServiceSpecific(1)
        },
        checkpoint: 0,
        // The conversion to the SCM's form panics above u32::MAX milliseconds.
        wait_hint: wait_hint.min(Duration::from_secs(3600)),
        process_id: None,
    }
}

fn service_main(_args: Vec<OsString>) {
    let Some((stop_wait, body)) = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let token = CancellationToken::new();
    // Unbounded, but it carries at most one message per SCM control plus one at the end.
    let (tx, rx) = mpsc::channel();
    let handler_token = token.clone();
    let handler_tx = tx.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Preshutdown | ServiceControl::Shutdown => {
            handler_token.cancel();
            let _ = handler_tx.send(Msg::Stop);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(NAME, handler) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %fail("cannot register the service control handler", e), "service not started");
            return;
        }
    };
    let _ = handle.set_service_status(status(ServiceState::Running, Duration::ZERO, true));
    let worker = std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(token)));
        let ok = match result {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "warden stopped with an error");
                false
            }
            Err(_) => {
                tracing::error!("warden panicked");
                false
            }
        };
        let _ = tx.send(Msg::Done(ok));
    });
    let mut ok = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Stop => {
                let _ =
                    handle.set_service_status(status(ServiceState::StopPending, stop_wait, true));
            }
            Msg::Done(success) => {
                ok = success;
                break;
            }
        }
    }
    let _ = worker.join();
    let _ = handle.set_service_status(status(ServiceState::Stopped, Duration::ZERO, ok));
}
