//! The administrator's pages in a real Chromium: the audit log (what was done through
//! the API appears with who and what; filters narrow it; paging; Korean labels), the
//! file manager (new folder and file, rename, drag-and-drop upload of an archive, extract,
//! delete one and several, plurals in both languages), and the install wizard (a person
//! installs Valheim with the fake SteamCMD, sees a bad port refused beside its field,
//! follows the progress to 100 % and lands on the new program's page), and the host's
//! process list with supervised programs linked.

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;
use crate::web::{ADMIN_PASSWORD, Ui, admin_seeing, create_demo, login, open_warden};

const T: Duration = crate::web::UI_WAIT;

/// The `data-action` of every audit row on the page.
async fn audit_actions(ui: &Ui) -> Vec<String> {
    ui.eval("[...document.querySelectorAll('[data-audit-row]')].map(r => r.dataset.action)")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_log_shows_who_did_what_and_filters() {
    let w = Warden::start().await;
    create_demo(&w).await;
    // Done through the API with the fixture's admin token: a start, a stop, and enough
    // folder creations for a second page (50 records a page).
    let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "running", Duration::from_secs(15))
        .await;
    let (st, v) = w.post("/api/programs/demo/stop", json!(null)).await;
    assert!(st.is_success(), "{v}");
    for i in 0..55 {
        let (st, v) = w
            .post(
                "/api/programs/demo/files/mkdir",
                json!({"path": format!("d{i:02}")}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    }
    // Records are written behind the answers: wait until all are in.
    wait_until(T, "58 audit records", || async {
        let (_, page) = w.get("/api/audit?limit=500").await;
        (page["entries"].as_array().map_or(0, Vec::len) >= 58).then_some(())
    })
    .await;

    let (browsing, ui) = admin_seeing(&w, "demo").await;
    // In the navigation for an administrator.
    ui.click("nav a[href='#/audit']").await;
    ui.wait(
        "document.querySelectorAll('[data-audit-row]').length === 50",
        T,
        "the first page of the audit log",
    )
    .await;
    // Newest first: after the sign-in, the last folder created, by the token, with its
    // target, result and address.
    let first: Vec<String> = ui
        .eval(
            "[...document.querySelector('[data-audit-row][data-action=\"files.mkdir\"]').querySelectorAll('td')].map(td => td.innerText.trim())",
        )
        .await;
    assert_eq!(first[1], "token:t-admin", "{first:?}");
    assert_eq!(first[2], "files.mkdir", "{first:?}");
    assert_eq!(first[3], "demo:d54", "{first:?}");
    assert_eq!(first[4], "Succeeded", "{first:?}");
    assert_eq!(first[5], "127.0.0.1", "{first:?}");

    // The older page holds the start and the stop.
    ui.click("[data-audit-older]").await;
    ui.wait(
        "document.querySelector('[data-audit-page-no]').dataset.auditPageNo === '2' && \
         [...document.querySelectorAll('[data-audit-row]')].some(r => r.dataset.action === 'program.start')",
        T,
        "the second page with the start",
    )
    .await;
    let actions = audit_actions(&ui).await;
    assert!(actions.contains(&"program.stop".to_string()), "{actions:?}");
    ui.click("[data-audit-newer]").await;
    ui.wait(
        "document.querySelector('[data-audit-page-no]').dataset.auditPageNo === '1'",
        T,
        "back on the first page",
    )
    .await;

    // Filters narrow it: the program actions only, then one user that did nothing.
    ui.type_into("#au-action", "program").await;
    ui.click("[data-audit-filters] button[type=submit]").await;
    ui.wait(
        "document.querySelectorAll('[data-audit-row]').length === 3",
        T,
        "only the program actions",
    )
    .await;
    let mut actions = audit_actions(&ui).await;
    actions.sort();
    assert_eq!(actions, ["program.create", "program.start", "program.stop"]);
    assert!(
        ui.eval::<bool>("document.querySelector('[data-audit-older]').disabled")
            .await,
        "a single page offers an older one"
    );
    ui.set_value("#au-action", "").await;
    ui.type_into("#au-user", "nobody").await;
    ui.click("[data-audit-filters] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-audit-empty]')",
        T,
        "no records for another user",
    )
    .await;

    // In Korean: the labels, the column names and the result.
    ui.click("[data-audit-filters] button[type=button]").await;
    ui.set_value("select.lang", "ko").await;
    ui.wait(
        "document.querySelectorAll('[data-audit-row]').length === 50 && document.querySelector('#audit-h').textContent === '감사 기록'",
        T,
        "the audit log in Korean",
    )
    .await;
    let (heads, result, nav): (Vec<String>, String, String) = ui
        .eval(
            "[[...document.querySelectorAll('[data-audit-page] thead th')].map(th => th.textContent.trim()), \
              document.querySelector('[data-audit-row] [data-result]').textContent.trim(), \
              document.querySelector(\"nav a[href='#/audit']\").textContent]",
        )
        .await;
    assert_eq!(
        heads,
        [
            "시각",
            "누가",
            "무엇을",
            "대상",
            "결과",
            "주소",
            "세부 정보"
        ]
    );
    assert_eq!(result, "성공");
    assert_eq!(nav, "감사 기록");
    assert_eq!(
        ui.eval::<String>("document.querySelector('label[for=au-user]').textContent")
            .await,
        "사용자"
    );
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the audit log on a phone").await;
    ui.shot("audit-ko-phone").await;
    browsing.finish(&ui).await;
}

/// The text of the listing's entry names, in order.
async fn listed(ui: &Ui) -> Vec<String> {
    ui.eval("[...document.querySelectorAll('[data-entry]')].map(e => e.dataset.entry)")
        .await
}

/// Confirms the open dialog.
async fn confirm(ui: &Ui) {
    ui.wait(
        "!!document.querySelector('dialog.confirm[open] [data-confirm=yes]')",
        T,
        "the confirmation",
    )
    .await;
    ui.click("dialog.confirm [data-confirm=yes]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_are_managed_like_in_a_file_manager() {
    let w = Warden::start().await;
    create_demo(&w).await;
    let root = w.data_dir.join("demo-world");
    std::fs::write(root.join("server.properties"), "motd=hi\n").expect("file");

    let (browsing, ui) = admin_seeing(&w, "demo").await;
    ui.go(
        "#/p/demo/files",
        "!!document.querySelector('[data-entry=\"server.properties\"]')",
    )
    .await;
    // One entry, in the singular.
    assert_eq!(
        ui.eval::<String>("document.querySelector('[data-total]').textContent")
            .await,
        "1 entry"
    );

    // A new folder.
    ui.click("[data-new-folder]").await;
    ui.wait(
        "!!document.querySelector('#new-dir')",
        T,
        "the folder name field",
    )
    .await;
    ui.type_into("#new-dir", "maps").await;
    ui.click("[data-name-form=new-dir] button[type=submit]")
        .await;
    ui.wait(
        "!!document.querySelector('[data-entry=maps][data-kind=dir]')",
        T,
        "the new folder in the listing",
    )
    .await;
    assert!(root.join("maps").is_dir());
    assert_eq!(
        ui.eval::<String>("document.querySelector('[data-total]').textContent")
            .await,
        "2 entries"
    );

    // A new file, opened in the editor.
    ui.click("[data-new-file]").await;
    ui.wait(
        "!!document.querySelector('#new-file')",
        T,
        "the file name field",
    )
    .await;
    ui.type_into("#new-file", "motd.txt").await;
    ui.click("[data-name-form=new-file] button[type=submit]")
        .await;
    ui.wait(
        "!!document.querySelector('[data-entry=\"motd.txt\"][data-kind=file]') && \
         !!document.querySelector('[data-editor=\"motd.txt\"] textarea')",
        T,
        "the new file listed and open",
    )
    .await;
    assert_eq!(std::fs::read(root.join("motd.txt")).expect("motd"), b"");

    // Rename it (a move into the folder).
    ui.click("[data-rename=\"motd.txt\"]").await;
    ui.wait(
        "(document.querySelector('[data-name-form=\"rename-motd.txt\"] input') || {}).value === 'motd.txt'",
        T,
        "the rename field with the current path",
    )
    .await;
    ui.set_value(
        "[data-name-form=\"rename-motd.txt\"] input",
        "maps/welcome.txt",
    )
    .await;
    ui.click("[data-name-form=\"rename-motd.txt\"] button[type=submit]")
        .await;
    ui.wait(
        "!document.querySelector('[data-entry=\"motd.txt\"]') && !document.querySelector('[data-editor]')",
        T,
        "the file gone from here",
    )
    .await;
    assert!(root.join("maps/welcome.txt").is_file());
    assert!(!root.join("motd.txt").exists());

    // Drag and drop an archive onto the folder.
    let archive = {
        use std::io::Write;
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("readme.txt", &b"read me\n"[..]),
            ("world/level.dat", b"LEVEL"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).expect("append");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b.into_inner().expect("tar")).expect("gz");
        gz.finish().expect("gz")
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&archive);
    let _: bool = ui
        .eval(&format!(
            "(() => {{ const bytes = Uint8Array.from(atob('{b64}'), c => c.charCodeAt(0)); \
               const dt = new DataTransfer(); dt.items.add(new File([bytes], 'pack.tar.gz')); \
               const zone = document.querySelector('[data-dropzone]'); \
               zone.dispatchEvent(new DragEvent('dragover', {{dataTransfer: dt, bubbles: true, cancelable: true}})); \
               zone.dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}})); \
               return true; }})()"
        ))
        .await;
    ui.wait(
        "!!document.querySelector('[data-entry=\"pack.tar.gz\"]') && document.body.innerText.includes('1 file uploaded.')",
        T,
        "the dropped archive uploaded",
    )
    .await;
    assert_eq!(
        std::fs::read(root.join("pack.tar.gz")).expect("uploaded"),
        archive
    );

    // Extract it into a new folder named after it.
    ui.click("[data-extract=\"pack.tar.gz\"]").await;
    ui.wait(
        "(document.querySelector('[data-name-form=\"extract-pack.tar.gz\"] input') || {}).value === 'pack'",
        T,
        "the extract field named after the archive",
    )
    .await;
    ui.click("[data-name-form=\"extract-pack.tar.gz\"] button[type=submit]")
        .await;
    ui.wait(
        "!!document.querySelector('[data-entry=pack][data-kind=dir]') && document.body.innerText.includes('Extracted 2 files into pack.')",
        T,
        "the extracted folder",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(root.join("pack/readme.txt")).expect("readme"),
        "read me\n"
    );
    assert_eq!(
        std::fs::read(root.join("pack/world/level.dat")).expect("level"),
        b"LEVEL"
    );
    ui.click("[data-entry=pack] button.entry-name").await;
    ui.wait(
        "!!document.querySelector('[data-entry=world]') && !!document.querySelector('[data-entry=\"readme.txt\"]')",
        T,
        "the extracted files listed",
    )
    .await;
    ui.click(".crumbs button").await;
    ui.wait(
        "!!document.querySelector('[data-entry=\"pack.tar.gz\"]')",
        T,
        "the root again",
    )
    .await;

    // Delete one file, confirmed.
    ui.click("[data-delete=\"server.properties\"]").await;
    confirm(&ui).await;
    ui.wait(
        "!document.querySelector('[data-entry=\"server.properties\"]')",
        T,
        "the deleted file gone",
    )
    .await;
    assert!(!root.join("server.properties").exists());

    // Select two and delete them together.
    ui.click("[data-select=maps]").await;
    ui.click("[data-select=\"pack.tar.gz\"]").await;
    ui.wait(
        "(document.querySelector('[data-delete-selected]') || {}).textContent?.trim() === 'Delete 2 selected entries'",
        T,
        "the multi-delete button",
    )
    .await;
    ui.click("[data-delete-selected]").await;
    ui.wait(
        "document.querySelector('#confirm-title').textContent === 'Delete 2 entries?'",
        T,
        "the plural confirmation",
    )
    .await;
    confirm(&ui).await;
    ui.wait(
        "!document.querySelector('[data-entry=maps]') && !document.querySelector('[data-entry=\"pack.tar.gz\"]')",
        T,
        "both gone",
    )
    .await;
    assert!(!root.join("maps").exists() && !root.join("pack.tar.gz").exists());
    assert_eq!(listed(&ui).await, ["pack"]);

    // Korean plurals and labels; a phone's width.
    ui.set_value("select.lang", "ko").await;
    ui.wait(
        "document.querySelector('[data-total]').textContent === '항목 1개' && \
         document.querySelector('[data-new-folder]').textContent === '새 폴더'",
        T,
        "the file manager in Korean",
    )
    .await;
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the file manager on a phone").await;
    ui.shot("files-ko-phone").await;
    browsing.finish(&ui).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_is_installed_from_the_wizard() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Slow enough progress lines that a person (and this test) sees them.
    let w = crate::install::warden_with_fake(
        tmp.path(),
        &[
            ("FAKE_STEAMCMD_BUILD", "777"),
            ("FAKE_STEAMCMD_STEP", "0.5"),
        ],
    )
    .await;
    create_demo(&w).await;

    let (browsing, ui) = admin_seeing(&w, "demo").await;
    ui.click("[data-new-server]").await;
    ui.wait(
        "!!document.querySelector('[data-template=valheim] [data-choose]') && \
         document.querySelectorAll('[data-template]').length >= 11",
        T,
        "the template cards",
    )
    .await;
    let card: String = ui
        .eval("document.querySelector('[data-template=valheim]').innerText")
        .await;
    assert!(
        card.contains("Valheim")
            && card.contains("SteamCMD app 896660")
            && card.contains("2456/udp")
            && card.contains("Valheim dedicated server."),
        "{card}"
    );
    ui.click("[data-template=valheim] [data-choose]").await;
    ui.wait(
        "!!document.querySelector('[data-install-form=valheim] #iw-v-game')",
        T,
        "the Valheim form",
    )
    .await;
    // In English the template's own texts show as written.
    let help: String = ui
        .eval("document.querySelector('#iw-v-world-help [data-variable-description]').textContent")
        .await;
    assert_eq!(help, "World name (its save files).");
    // Defaults filled in, the password a password field, the number fields numeric.
    let (name, game, world, pw_type, public_type): (String, String, String, String, String) = ui
        .eval(
            "['#iw-name', '#iw-v-game', '#iw-v-world'].map(s => document.querySelector(s).value) \
               .concat([document.querySelector('#iw-v-password').type, document.querySelector('#iw-v-public').type])",
        )
        .await;
    assert_eq!(
        (name.as_str(), game.as_str(), world.as_str()),
        ("valheim", "2456", "Dedicated")
    );
    assert_eq!(
        (pw_type.as_str(), public_type.as_str()),
        ("password", "number")
    );

    // A bad port is refused by the server and shown beside its field.
    ui.set_value("#iw-name", "vh").await;
    ui.set_value("#iw-v-game", "70000").await;
    ui.click("[data-install-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('#iw-v-game-error') && document.querySelector('#iw-v-game').getAttribute('aria-invalid') === 'true'",
        T,
        "the port's error beside it",
    )
    .await;
    let err: String = ui
        .eval("document.querySelector('#iw-v-game-error').textContent")
        .await;
    assert!(err.contains("65535"), "{err}");
    let (st, _) = w.get("/api/programs/vh").await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "a refused install made a program"
    );

    // A good one installs, with its progress shown on the way to 100 %.
    ui.set_value("#iw-v-game", "24560").await;
    ui.set_value("#iw-v-password", "secret-pass").await;
    ui.click("[data-install-form] button[type=submit]").await;
    ui.wait(
        "(() => { const p = document.querySelector('[data-install-state=downloading] [data-percent]'); \
           return !!p && +p.dataset.percent > 0 && +p.dataset.percent < 100; })()",
        Duration::from_secs(20),
        "a download part way",
    )
    .await;
    ui.wait(
        "!!document.querySelector('[data-install-state=installed]') && \
         document.querySelector('[data-percent]').textContent === '100 %' && \
         document.querySelector('progress').value === 100",
        Duration::from_secs(60),
        "the install at 100 %",
    )
    .await;
    let done: String = ui
        .eval("document.querySelector('[data-install-progress]').innerText")
        .await;
    assert!(
        done.contains("Installed") && done.contains("Build 777"),
        "{done}"
    );
    ui.click("[data-open-program=vh]").await;
    ui.wait(
        "!!document.querySelector('[data-program-page=vh]') && location.hash === '#/p/vh'",
        T,
        "the new program's page",
    )
    .await;
    let (st, p) = w.get("/api/programs/vh").await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert!(
        p.to_string().contains("24560"),
        "the port typed is not used: {p}"
    );

    // Only the refusal this test caused failed.
    let problems = std::mem::take(&mut *ui.problems.lock().expect("lock"));
    assert!(
        problems.errors.is_empty(),
        "console errors: {:#?}",
        problems.errors
    );
    let unexpected: Vec<_> = problems
        .network
        .iter()
        .filter(|(url, text)| !(url.ends_with("/api/install") && text.contains("422")))
        .collect();
    assert!(unexpected.is_empty(), "failed requests: {unexpected:#?}");
    ui.problems.lock().expect("lock").network.clear();
    browsing.finish(&ui).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_processes_are_listed_with_their_programs() {
    let w = Warden::start().await;
    create_demo(&w).await;
    let (st, v) = w.post("/api/programs/demo/start", json!(null)).await;
    assert!(st.is_success(), "{v}");
    w.wait_state("demo", "running", Duration::from_secs(15))
        .await;
    let (_, demo) = w.get("/api/programs/demo").await;
    let pid = demo["pid"].as_u64().expect("the demo's pid");

    let (browsing, ui) = admin_seeing(&w, "demo").await;
    ui.click("nav a[href='#/processes']").await;
    ui.wait(
        "!!document.querySelector('[data-processes-page] [data-pid]')",
        T,
        "the process list",
    )
    .await;
    // Every process of the host, by memory: the demo's is among them, linked to it.
    ui.set_value("#pr-limit", "500").await;
    ui.set_value("#pr-sort", "memory").await;
    ui.wait(
        &format!(
            "(() => {{ const r = document.querySelector('[data-shown-sort=memory][data-shown-limit=\"500\"] [data-process-program=demo]'); \
               return !!r && r.dataset.pid === '{pid}' && !!r.querySelector(\"a[href='#/p/demo']\"); }})()"
        ),
        T,
        "the demo's process linked to its program",
    )
    .await;
    // Sorted by memory, largest first, as the page shows it.
    let memory: Vec<u64> = ui
        .eval("[...document.querySelectorAll('[data-pid]')].map(r => +r.dataset.memory)")
        .await;
    assert!(memory.len() > 2, "{memory:?}");
    assert!(
        memory.windows(2).all(|p| p[0] >= p[1]),
        "not sorted by memory: {memory:?}"
    );

    ui.set_value("select.lang", "ko").await;
    ui.wait(
        "document.querySelector('#procs-h').textContent === '호스트의 프로세스' && \
         [...document.querySelectorAll('[data-processes-page] thead th')].map(th => th.textContent).join('|') === 'PID|실행 파일|CPU|메모리|프로그램'",
        T,
        "the process list in Korean",
    )
    .await;
    ui.set_width(390, 844).await;
    ui.assert_fits(390, "the process list on a phone").await;
    ui.click("[data-process-program=demo] a").await;
    ui.wait(
        "!!document.querySelector('[data-program-page=demo]')",
        T,
        "the program page from the process list",
    )
    .await;
    browsing.finish(&ui).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_java_too_old_for_the_build_is_explained_in_korean() {
    static JAR: &[u8] = b"PK\x03\x04 a jar that needs Java 21";
    let base = crate::install::mojang_double(JAR).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let java = crate::install::fake_java(
        tmp.path(),
        "jdk17",
        "openjdk version \"17.0.15\" 2025-04-15",
    );
    let w = Warden::start_in(
        &tmp.path().join("data"),
        &format!(
            "[install]\nmojang_url = {base:?}\njava = {:?}\n",
            java.display().to_string()
        ),
    )
    .await;
    create_demo(&w).await;

    let (browsing, ui) = open_warden(&w).await;
    let _: bool = ui
        .eval("localStorage.setItem('warden.lang', 'ko'); location.reload(); true")
        .await;
    ui.wait(
        "!!document.querySelector('#login-user') && document.documentElement.lang === 'ko'",
        T,
        "the Korean login page",
    )
    .await;
    login(&ui, "admin", ADMIN_PASSWORD).await;
    ui.click("[data-new-server]").await;
    ui.wait(
        "!!document.querySelector('[data-template=minecraft-vanilla] [data-choose]')",
        T,
        "the template cards",
    )
    .await;
    ui.click("[data-template=minecraft-vanilla] [data-choose]")
        .await;
    ui.wait(
        "!!document.querySelector('#iw-v-accept_eula')",
        T,
        "the Minecraft form",
    )
    .await;
    ui.click("#iw-v-accept_eula").await;
    ui.click("[data-install-form] button[type=submit]").await;
    ui.wait(
        "!!document.querySelector('[data-install-failed=java_too_old] [data-install-why]')",
        T,
        "the Java failure",
    )
    .await;
    let why: String = ui
        .eval("document.querySelector('[data-install-why]').innerText")
        .await;
    assert!(
        why.contains("Minecraft 1.99.1에는 Java 21 이상이 필요한데")
            && why.contains("Java 17입니다")
            && why.contains("jdk17/java"),
        "{why}"
    );
    let english =
        crate::web_korean::english_words(&ui, &["admin", "demo", "minecraft-vanilla"]).await;
    assert!(
        english.is_empty(),
        "English on the Korean failure: {english:?}"
    );
    let (code, _) = w.get("/api/programs/minecraft-vanilla").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    browsing.finish(&ui).await;
}
