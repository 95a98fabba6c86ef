//! The operator's walk-through against a real mig-api on a loopback port (docs/design.md §2): script
//! mode, a piped interactive session, and the refusal to sign a statement that does not match
//! the local archive. Needs the workspace binaries: `cargo build --workspace --bins` first.

mod support;

use e2e::host::sha256_hex;
use e2e::{dev_key, ApiOptions, ApiServer};
use support::{
    created_id, gpg_admin, json, key_file_admin, loader_asks, loader_key, loader_reports,
    manifest_archive,
};

/// A mig-api requiring `required` signatures, with admin1 bootstrapped on the server.
fn api_with_admin1(required: u32) -> ApiServer {
    let api = ApiServer::start(ApiOptions {
        required_signatures: required,
        ..ApiOptions::default()
    });
    api.add_investigator(
        "admin1",
        &dev_key("admin1.pub.asc"),
        "PermAdmin,PermManifest,PermLoader",
    )
    .ok();
    api
}

#[test]
fn script_mode_walk_through_two_signatures_and_a_loader() {
    let api = api_with_admin1(2);
    let admin1 = gpg_admin(&api.base_url, "admin1");

    // admin1 creates the second administrator.
    let o = admin1.run(&[
        "create",
        "investigator",
        "--name",
        "admin2",
        "--pubkey",
        dev_key("admin2.pub.asc").to_str().unwrap(),
        "--perms",
        "PermManifest",
    ]);
    assert!(
        o.ok()
            .stdout
            .contains("Investigator 'admin2' successfully created with ID 2"),
        "{o}"
    );
    let admin2 = key_file_admin(&api.base_url, "admin2");
    let me = json(&admin2.run(&["--json", "investigator", "me", "json"]));
    assert_eq!(me["name"], "admin2");
    assert_eq!(
        me["fingerprint"].as_str().unwrap().to_ascii_uppercase(),
        e2e::fingerprint(&dev_key("admin2.pub.asc"))
    );

    // The manifest: a directory packed with GNU tar, targeted at Linux loaders.
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "mig-manifest-int-linux", b"agent v1\n");
    let created = json(&admin1.run(&[
        "create",
        "manifest",
        "--name",
        "a new manifest",
        "--target",
        "env#>>'{os}'='linux'",
        "--content",
        archive.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(created["status"], "staged");
    assert_eq!(created["entries"].as_array().unwrap().len(), 6);
    let id = created["id"].as_u64().unwrap().to_string();

    let o = admin1.run(&["search", "manifest", "where", &format!("manifestid={id}")]);
    let row = o
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains("a new manifest"))
        .unwrap_or_default()
        .to_string();
    assert!(
        row.contains("staged") && row.contains("env#>>'{os}'='linux'"),
        "{o}"
    );
    assert!(
        o.stdout.starts_with("Searching manifest where manifestid="),
        "{o}"
    );
    assert!(
        o.stdout
            .contains("- ID - + ----      Name      ---- + -- Status --"),
        "{o}"
    );

    // admin1 signs through gpg, after checking the statement against the local archive.
    let o = admin1.run(&[
        "manifest",
        &id,
        "sign",
        "--content",
        archive.to_str().unwrap(),
    ]);
    let out = &o.ok().stdout;
    for expected in [
        &format!("Statement of manifest {id}"),
        "  name:     a new manifest",
        &format!("  serial:   {id}"),
        "  platform: ",
        "  expires:  ",
        "holds the same 6 entries, byte for byte",
        "Manifest signature has been accepted",
        "Status 'staged', signed by: admin1",
    ] {
        assert!(out.contains(expected), "missing {expected:?}: {o}");
    }
    assert!(
        out.contains(&sha256_hex(b"agent v1\n")),
        "the statement's hashes are shown: {o}"
    );

    // A second signature by the same investigator does not count twice.
    let o = admin1.run(&["manifest", &id, "sign"]);
    assert!(
        o.failed().stderr.contains(&format!(
            "POST manifests/{id}/signatures: the API answered HTTP 4"
        )),
        "{o}"
    );

    // admin2 signs with a key file: two distinct administrators, the manifest is active.
    let o = admin2.run(&["manifest", &id, "sign"]);
    assert!(
        o.ok()
            .stdout
            .contains("Status 'active', signed by: admin1, admin2"),
        "{o}"
    );
    let rec = json(&admin2.run(&["manifest", &id, "json", "--json"]));
    assert_eq!(rec["status"], "active");

    // Inspecting: shasum sorted by name, the archive fetched byte for byte, never overwritten.
    let o = admin2.run(&["manifest", &id, "shasum"]);
    let lines: Vec<&str> = o.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{o}");
    assert_eq!(
        lines[0],
        format!(
            "{}  agentcert",
            sha256_hex(b"-----BEGIN CERTIFICATE-----\nAGENT\n-----END CERTIFICATE-----\n")
        )
    );
    assert!(
        lines.contains(&format!("{}  mig-agent", sha256_hex(b"agent v1\n")).as_str()),
        "{o}"
    );
    let fetched = work.path().join("fetched.tar.gz");
    let o = admin1.run(&["manifest", &id, "fetch", fetched.to_str().unwrap()]);
    assert!(
        o.ok().stdout.contains("its 6 entries match the statement"),
        "{o}"
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    let o = admin1.run(&["manifest", &id, "fetch", fetched.to_str().unwrap()]);
    assert!(o.failed().stderr.contains("refusing to overwrite"), "{o}");

    // The loader: created disabled with its key shown once, then enabled.
    let o = admin1.run(&[
        "create",
        "loader",
        "--name",
        "corbomite.internal",
        "--expectenv",
        "tags#>>'{operator}'='myorg'",
    ]);
    let key = loader_key(&o.ok().stdout);
    assert_eq!(key.len(), 40, "{o}");
    assert!(key.bytes().all(|c| c.is_ascii_alphanumeric()), "{key}");
    let loader_id = created_id(&o.stdout).to_string();
    assert!(o.stdout.contains("but is disabled"), "{o}");
    let o = admin1.run(&["loader", &loader_id, "enable"]);
    assert!(o.ok().stdout.contains("Loader has been enabled"), "{o}");

    let o = admin1.run(&["search", "loader", "where", "loadername=%corb%"]);
    let row = o
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains("corbomite.internal"))
        .unwrap_or_default()
        .to_string();
    assert!(row.contains("unset") && row.contains("true"), "{o}");
    let found = json(&admin1.run(&["--json", "search", "loader", "where", "loadername=%corb%"]));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["enabled"], true);
    assert_eq!(found[0]["expectenv"], "tags#>>'{operator}'='myorg'");
    assert_eq!(found[0]["prefix"].as_str().unwrap(), &key[..8]);

    let o = admin1.run(&["search", "manifest", "where", "status=active"]);
    assert!(
        o.ok()
            .stdout
            .lines()
            .any(|l| l.contains("a new manifest") && l.contains("active")),
        "{o}"
    );

    // Errors carry the API's status and reason.
    let o = admin1.run(&["manifest", "999", "json"]);
    assert!(o.failed().stderr.contains("HTTP 404"), "{o}");
    let o = admin2.run(&["create", "loader", "--name", "not-allowed"]);
    assert!(o.failed().stderr.contains("HTTP 403"), "{o}");
    assert!(
        o.stderr.contains("PermLoaderNew"),
        "the missing permission is named: {o}"
    );
}

#[test]
fn sign_refuses_a_local_archive_that_differs_from_the_statement() {
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "v1", b"agent v1\n");
    let other = manifest_archive(work.path(), "other", b"agent v2, not what was uploaded\n");
    let created = json(&admin1.run(&[
        "--json",
        "create",
        "manifest",
        "--name",
        "refusal",
        "--target",
        "env#>>'{os}'='linux'",
        "--content",
        archive.to_str().unwrap(),
    ]));
    let id = created["id"].as_u64().unwrap().to_string();

    let o = admin1.run(&[
        "manifest",
        &id,
        "sign",
        "--content",
        other.to_str().unwrap(),
    ]);
    o.failed();
    assert!(
        o.stderr
            .contains(&format!("refusing to sign manifest {id}")),
        "{o}"
    );
    assert!(
        o.stderr.contains("mig-agent: sha256 differs"),
        "the differing entry is named: {o}"
    );
    assert!(
        !o.stderr.contains("cacert:"),
        "only differences are listed: {o}"
    );

    let rec = json(&admin1.run(&["--json", "manifest", &id, "json"]));
    assert_eq!(rec["status"], "staged", "nothing was signed");
    assert_eq!(rec["signers"].as_array().unwrap().len(), 0);

    // With the right archive the single required signature activates it.
    let o = admin1.run(&[
        "manifest",
        &id,
        "sign",
        "--content",
        archive.to_str().unwrap(),
    ]);
    assert!(
        o.ok().stdout.contains("Status 'active', signed by: admin1"),
        "{o}"
    );
}

/// docs/design.md §4.6: the console refuses to sign a statement whose serial lies more than
/// `MAX_SERIAL_STEP` above the highest it signed for that API (kept per API in
/// `~/.mig_console_state`), so an administrator is not led to sign a fast-forward; the refusal
/// changes nothing and names the file. A console that signed nothing yet takes any serial.
#[test]
fn sign_refuses_a_serial_far_above_the_highest_this_console_signed_for_the_api() {
    use mig_protocol::serial::MAX_SERIAL_STEP;
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "v1", b"agent v1\n");
    let create = |name: &str| {
        json(&admin1.run(&[
            "--json",
            "create",
            "manifest",
            "--name",
            name,
            "--target",
            "env#>>'{os}'='linux'",
            "--content",
            archive.to_str().unwrap(),
        ]))["id"]
            .as_u64()
            .unwrap()
    };
    let first = create("first");
    admin1.run(&["manifest", &first.to_string(), "sign"]).ok();
    let state = admin1.home.path().join(".mig_console_state");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert_eq!(recorded, format!("{first} {}\n", api.base_url));

    // The API's database (as a compromised API would) gives the next manifest a serial far above.
    let second = create("second");
    let far = first + MAX_SERIAL_STEP + 1;
    api.sql(&format!(
        "INSERT INTO manifests (id, name, target, status, os, arch, created, issued, expires, \
           statement, archive_sha256, archive_size, creator) \
         SELECT {far}, name, target, status, os, arch, created, issued, expires, \
           replace(statement, '\"serial\":{second},', '\"serial\":{far},'), archive_sha256, \
           archive_size, creator FROM manifests WHERE id = {second}"
    ));
    api.sql(&format!(
        "INSERT INTO manifest_files (manifest_id, position, name, sha256, size) \
         SELECT {far}, position, name, sha256, size FROM manifest_files WHERE manifest_id = {second}"
    ));
    let o = admin1.run(&["manifest", &far.to_string(), "sign"]);
    o.failed();
    assert!(
        o.stderr.contains(&format!(
            "refusing to sign: statement serial {far} is more than {MAX_SERIAL_STEP} above the \
             console's highest signed serial {first}: refusing a fast-forward"
        )),
        "{o}"
    );
    assert!(o.stderr.contains(".mig_console_state"), "{o}");
    let rec = json(&admin1.run(&["--json", "manifest", &far.to_string(), "json"]));
    assert_eq!(rec["status"], "staged", "nothing was signed");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), recorded);

    // A console that signed nothing for this API yet has no floor to measure from.
    let admin1_elsewhere = key_file_admin(&api.base_url, "admin1");
    admin1_elsewhere
        .run(&["manifest", &far.to_string(), "sign"])
        .ok();
}

#[test]
fn an_interactive_session_through_standard_input() {
    let api = api_with_admin1(1);
    let admin1 = gpg_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "mig-manifest-linux", b"agent v1\n");
    let session = format!(
        "create manifest\n\
         a new manifest\n\
         env#>>'{{os}}'='linux'\n\
         {}\n\
         y\n\
         search manifest where manifestid=1\n\
         manifest 1\n\
         entry\n\
         sign\n\
         y\n\
         r\n\
         json\n\
         exit\n\
         create loader\n\
         corbomite.internal\n\
         tags#>>'{{operator}}'='myorg'\n\
         y\n\
         search loader where loadername=%corb%\n\
         loader 1\n\
         enable\n\
         expectenv tags#>>'{{operator}}'='otherorg' AND env#>>'{{os}}'='linux'\n\
         key\n\
         n\n\
         json\n",
        archive.display()
    );
    // The input ends inside the loader reader: end of input leaves the reader and the console.
    let o = admin1.session(&session);
    o.ok();
    let out = &o.stdout;
    for expected in [
        "Connected to http://127.0.0.1:",
        "as 'admin1' (investigator 1)",
        "mig> create manifest",
        "Entering manifest creation mode.",
        "Please provide the name of the new manifest",
        "name> a new manifest",
        "Name: 'a new manifest'",
        "target> env#>>'{os}'='linux'",
        "Target: 'env#>>'{os}'='linux''",
        "Please enter path to new manifest archive content.",
        "contentpath> ",
        "\"archive\": \"...\"",
        "create manifest? (y/n)> y",
        "Manifest successfully created with ID 1 (status staged)",
        "Searching manifest where manifestid=1, limited to 100 results",
        "Entering manifest reader mode. Type exit or press ctrl+d to leave. help may help.",
        "Manifest: 'a new manifest'.",
        "Status 'staged'.",
        "manifest 1> entry",
        "manifest 1> sign",
        "sign manifest 1 with gpg key 37050AE08CB33351018A809EFD575A3E1CEB348D? (y/n)> y",
        "Manifest signature has been accepted",
        "manifest 1> r",
        "reloaded",
        "\"status\": \"active\"",
        "mig> create loader",
        "Entering loader creation mode.",
        "expectenv> tags#>>'{operator}'='myorg'",
        "Server will assign prefix and key on creation",
        "create loader entry? (y/n)> y",
        "New entry successfully created (id 1) but is disabled",
        "loader 1> enable",
        "Loader has been enabled",
        "expectenv set to 'tags#>>'{operator}'='otherorg' AND env#>>'{os}'='linux''",
        "Its current key stops working. (y/n)> n",
        "not confirmed, nothing done",
    ] {
        assert!(out.contains(expected), "missing {expected:?}: {o}");
    }
    let key = loader_key(out);
    assert_eq!(key.len(), 40);
    assert_eq!(
        out.matches("Loader key including prefix").count(),
        1,
        "the declined key was not issued: {o}"
    );
    // The loader's record after the session: enabled, with the new expectenv.
    let rec = json(&admin1.run(&["--json", "loader", "1"]));
    assert_eq!(rec["enabled"], true);
    assert_eq!(
        rec["expectenv"],
        "tags#>>'{operator}'='otherorg' AND env#>>'{os}'='linux'"
    );
    assert_eq!(
        rec["prefix"].as_str().unwrap(),
        &key[..8],
        "the key was not rotated"
    );
}

#[test]
fn a_failing_command_in_a_piped_session_makes_it_exit_non_zero() {
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let o = admin1.session("manifest 42 json\nsearch loader where loadername=%x%\n");
    o.failed();
    assert!(
        o.stderr.contains("GET manifests/42") && o.stderr.contains("HTTP 404"),
        "{o}"
    );
    assert!(
        o.stdout
            .contains("- ID - + ----      Name      ---- + ----   Agent Name"),
        "the session went on: {o}"
    );
}

#[test]
fn manifest_and_loader_readers_reset_disable_attributes_and_loaders() {
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let o = admin1.run(&["create", "loader", "--name", "corbomite.internal"]);
    let key = loader_key(&o.ok().stdout);
    admin1.run(&["loader", "1", "enable"]).ok();
    // The loader asks once, as mig-loader does: the API now knows its platform and agent name.
    let status = loader_asks(&api.base_url, &key);
    assert!(
        status == 404 || status == 200,
        "the loader's request was accepted ({status})"
    );
    let o = admin1.run(&["search", "loader", "where", "loaderid=1"]);
    let row = o
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains("corbomite.internal"))
        .unwrap_or_default()
        .to_string();
    assert!(
        row.contains("agent.corbomite") && !row.contains("never"),
        "{o}"
    );
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "bundle", b"agent v1\n");
    let created = json(&admin1.run(&[
        "--json",
        "create",
        "manifest",
        "--name",
        "for corbomite",
        "--target",
        "loadername = 'corbomite.internal'",
        "--content",
        archive.to_str().unwrap(),
    ]));
    let id = created["id"].as_u64().unwrap().to_string();

    // `loaders`: the enabled loaders the target matches now.
    let o = admin1.run(&["manifest", &id, "loaders"]);
    assert!(
        o.ok()
            .stdout
            .lines()
            .any(|l| l.contains("corbomite.internal") && l.contains("true")),
        "{o}"
    );

    // sign → active; reset → staged without signatures; sign again; disable is final.
    admin1.run(&["manifest", &id, "sign"]).ok();
    let o = admin1.run(&["manifest", &id, "reset"]);
    assert!(o.ok().stdout.contains("has been reset to staged"), "{o}");
    let rec = json(&admin1.run(&["--json", "manifest", &id]));
    assert_eq!(rec["status"], "staged");
    assert_eq!(rec["signers"].as_array().unwrap().len(), 0);
    admin1.run(&["manifest", &id, "sign"]).ok();
    let o = admin1.run(&["manifest", &id, "disable"]);
    assert!(
        o.ok()
            .stdout
            .contains(&format!("Manifest {id} has been disabled")),
        "{o}"
    );
    assert_eq!(
        json(&admin1.run(&["--json", "manifest", &id]))["status"],
        "disabled"
    );
    let o = admin1.run(&["manifest", &id, "sign"]);
    assert!(
        o.failed()
            .stderr
            .contains("it is disabled, and that is final"),
        "{o}"
    );

    // Attributes: replaced, shown, cleared.
    let o = admin1.run(&["loader", "1", "attributes", "team=ops", "region=eu"]);
    assert!(
        o.ok().stdout.contains("attributes set: region=eu team=ops"),
        "{o}"
    );
    let o = admin1.run(&["loader", "1", "attributes"]);
    assert!(o.ok().stdout.contains("team = ops"), "{o}");
    assert_eq!(
        json(&admin1.run(&["--json", "loader", "1"]))["attributes"]["region"],
        "eu"
    );
    let o = admin1.run(&["loader", "1", "attributes", "--clear"]);
    assert!(o.ok().stdout.contains("attributes cleared"), "{o}");

    // A new key keeps the prefix and changes the secret; a disabled loader is targeted no more.
    let before = json(&admin1.run(&["--json", "loader", "1"]))["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    let o = admin1.run(&["loader", "1", "key"]);
    let rotated = loader_key(&o.ok().stdout);
    assert_eq!(&rotated[..8], before, "{o}");
    assert_ne!(rotated, key);
    let o = admin1.run(&["loader", "1", "disable"]);
    assert!(o.ok().stdout.contains("Loader has been disabled"), "{o}");
    let o = admin1.run(&["manifest", &id, "loaders"]);
    assert!(o.ok().stdout.contains("No enabled loader matches"), "{o}");

    // The reader's help and exit, from a piped session.
    let o = admin1.session(&format!("manifest {id}\nhelp\nexit\nloader 1\nhelp\n"));
    assert!(o.ok().stdout.contains("fetch PATH"), "{o}");
    assert!(o.stdout.contains("Status 'disabled'."), "{o}");
    assert!(o.stdout.contains("attributes [k=v ...]"), "{o}");
}

#[test]
fn investigators_permissions_api_keys_and_plugins() {
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let pubkey = dev_key("admin2.pub.asc");
    let o = admin1.run(&[
        "create",
        "investigator",
        "--name",
        "admin2",
        "--pubkey",
        pubkey.to_str().unwrap(),
    ]);
    o.ok();
    let admin2 = key_file_admin(&api.base_url, "admin2");
    admin2
        .run(&["search", "loader", "where", "loadername=%"])
        .ok();
    let o = admin2.run(&["create", "loader", "--name", "corbomite.internal"]);
    assert!(o.failed().stderr.contains("HTTP 403"), "{o}");

    let o = admin1.run(&["investigator", "2", "setperms", "PermLoader"]);
    assert!(
        o.ok()
            .stdout
            .contains("Permissions of investigator 2 updated"),
        "{o}"
    );
    assert!(o.stdout.contains("PermLoaderNew"), "{o}");
    let o = admin1.run(&["investigator", "2", "setperms", "PermLoaders"]);
    assert!(
        o.failed().stderr.contains("PermLoaders"),
        "a misspelled set is named: {o}"
    );
    admin2
        .run(&["create", "loader", "--name", "corbomite.internal"])
        .ok();

    // Disabled, admin2 cannot log in; enabled again, it can.
    let o = admin1.run(&["investigator", "2", "disable"]);
    assert!(
        o.ok().stdout.contains("Investigator 2 is now disabled"),
        "{o}"
    );
    let o = admin2.run(&["investigator", "me"]);
    assert!(o.failed().stderr.contains("HTTP 401"), "{o}");
    admin1.run(&["investigator", "2", "enable"]).ok();
    admin2.run(&["investigator", "me"]).ok();

    // An API key, shown once, authenticates with X-MIGAPIKEY and no signing identity.
    let o = admin1.run(&["investigator", "2", "apikey"]);
    let marker = "API key of investigator 2 (shown once): ";
    let key = o
        .ok()
        .stdout
        .split(marker)
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("{o}"));
    let keyless = key_file_admin(&api.base_url, "admin2");
    std::fs::write(&keyless.config, format!("[api]\nurl = {}\n", api.base_url)).unwrap();
    let mut c = keyless.command(&["--json", "investigator", "me"]);
    c.env("MIG_APIKEY", key.trim());
    let me = json(&e2e::run(c, None, support::TIMEOUT));
    assert_eq!(me["name"], "admin2");
    let o = keyless.run(&["investigator", "me"]);
    assert!(o.failed().stderr.contains("no credential"), "{o}");

    // Plugins: the built-ins are listed; the API's reasons for refusals are shown.
    let o = admin1.run(&["plugin", "list"]);
    assert!(
        o.ok()
            .stdout
            .lines()
            .any(|l| l.starts_with("expr ") && l.contains("yes")),
        "{o}"
    );
    let work = tempfile::tempdir().unwrap();
    let empty_module = work.path().join("empty.wasm");
    std::fs::write(&empty_module, b"\0asm\x01\0\0\0").unwrap();
    let o = admin1.run(&["plugin", "upload", "mine", empty_module.to_str().unwrap()]);
    assert!(
        o.failed()
            .stderr
            .contains("POST plugins: the API answered HTTP 4"),
        "{o}"
    );
    assert!(
        o.stderr.contains("\"mine\""),
        "the API's reason names the plugin: {o}"
    );
    let text = work.path().join("notes.txt");
    std::fs::write(&text, "not wasm").unwrap();
    let o = admin1.run(&["plugin", "upload", "mine", text.to_str().unwrap()]);
    assert!(
        o.failed().stderr.contains("is not a WebAssembly module"),
        "{o}"
    );
    let o = admin1.run(&["plugin", "delete", "expr"]);
    assert!(
        o.failed()
            .stderr
            .contains("DELETE plugins/expr: the API answered HTTP 4"),
        "{o}"
    );
}

#[test]
fn status_shows_what_the_fleet_reported_and_search_finds_the_hosts() {
    let api = api_with_admin1(1);
    let admin1 = gpg_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "mig-manifest-status", b"agent v2\n");
    let created = json(&admin1.run(&[
        "--json",
        "create",
        "manifest",
        "--name",
        "canary",
        "--target",
        "true",
        "--content",
        archive.to_str().unwrap(),
    ]));
    let id = created["id"].as_u64().unwrap();
    admin1.run(&["manifest", &id.to_string(), "sign"]).ok();
    let mut keys = Vec::new();
    for name in ["good.host", "bad.host"] {
        let o = admin1.run(&["create", "loader", "--name", name]);
        let key = loader_key(&o.ok().stdout);
        let lid = created_id(&o.stdout).to_string();
        admin1.run(&["loader", &lid, "enable"]).ok();
        assert_eq!(loader_asks(&api.base_url, &key), 200);
        keys.push(key);
    }
    let base = api.base_url.as_str();
    assert_eq!(loader_reports(base, &keys[0], id, "installed", ""), 200);
    assert_eq!(
        loader_reports(base, &keys[1], id, "rolled_back", "agent unhealthy"),
        200
    );

    let all = json(&admin1.run(&["--json", "status"]));
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    let r = &all[0];
    assert_eq!(
        (
            r["manifest"].as_u64(),
            r["given"].as_u64(),
            r["on_it"].as_u64()
        ),
        (Some(id), Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["rolled_back"], 1);
    let expires = mig_protocol::time::Timestamp::parse(r["expires"].as_str().unwrap()).unwrap();
    let before = mig_protocol::time::Timestamp::now();
    let o = admin1.run(&["status"]);
    let after = mig_protocol::time::Timestamp::now();
    let out = &o.ok().stdout;
    let row = out
        .lines()
        .find(|l| l.contains("canary"))
        .unwrap_or_else(|| panic!("no row: {o}"));
    let numbers: Vec<&str> = row.split_whitespace().skip(3).collect();
    assert_eq!(numbers[..7], ["2", "1", "0", "0", "1", "0", "0"], "{o}");
    // The last column: whole days left before the 90-day statement expires, as of the console's
    // clock while it ran (89 once a second has passed since signing, 90 within the same second).
    let days = |now: mig_protocol::time::Timestamp| ((expires.0 - now.0) / 86_400).to_string();
    assert!(
        [days(before), days(after)].contains(&numbers[7].to_string()),
        "{o}"
    );
    assert!(
        expires.0 - before.0 <= 90 * 86_400 && expires.0 - after.0 > 89 * 86_400,
        "the statement expires 90 days after signing: {expires}"
    );
    assert!(
        out.contains(&format!("Commonest failures of manifest {id}:")),
        "{o}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("rolled_back") && l.contains("agent unhealthy")),
        "{o}"
    );
    assert!(out.contains("not seen for more than 24 h"), "{o}");
    // The API's freshness key (the development one) and the signature both hosts were given.
    let key = out
        .lines()
        .find(|l| l.starts_with("Freshness key "))
        .unwrap_or_else(|| panic!("no freshness line: {o}"));
    assert!(
        key.ends_with("(lifetime 24 h): signs each manifest's answer once, again after 12 h."),
        "{o}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("  Manifest {id}: signed "))
                && l.contains(", expires in 2")),
        "{o}"
    );
    let one = json(&admin1.run(&[
        "--json",
        "status",
        "manifest",
        &id.to_string(),
        "--stale-hours",
        "2",
    ]));
    assert_eq!(one["stale_after"], 7200, "{one}");

    let found = json(&admin1.run(&[
        "--json",
        "search",
        "loader",
        "where",
        &format!("serial={id}"),
        "and",
        "result=rolled_back",
    ]));
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bad.host"]);

    let o = admin1.run(&["status", "manifest", "999"]);
    assert!(o.failed().stderr.contains("HTTP 404"), "{o}");
    let o = admin1.run(&["status", "--stale-hours", "0"]);
    assert!(o.failed().stderr.contains("--stale-hours"), "{o}");

    // A rule on counts already past it halts at once; status says so, resume goes on.
    let m = id.to_string();
    let o = admin1.run(&["manifest", &m, "halt-after", "1"]);
    assert!(
        o.ok().stdout.contains(&format!(
            "Manifest {id} is halted: 1 of 2 loaders that reported failed or rolled back"
        )),
        "{o}"
    );
    let o = admin1.run(&["status"]);
    assert!(
        o.ok().stdout.contains(&format!("Manifest {id} HALTED at ")),
        "{o}"
    );
    let row = o.stdout.lines().find(|l| l.contains("canary")).unwrap();
    assert!(row.contains("halted"), "{o}");
    let o = admin1.run(&["manifest", &m, "resume", "--yes"]);
    assert!(o.ok().stdout.contains("resumed"), "{o}");
    let rec = json(&admin1.run(&["--json", "manifest", &m]));
    assert_eq!(
        (rec["status"].as_str(), &rec["halt"]["after"]),
        (Some("active"), &serde_json::json!("1"))
    );
    let o = admin1.run(&["manifest", &m, "halt-after", "off"]);
    assert!(o.ok().stdout.contains("has no halt rule"), "{o}");
    let o = admin1.run(&["manifest", &m, "halt-after", "0%"]);
    assert!(o.failed().stderr.contains("like 3 or 5%"), "{o}");
}

/// `create manifest --os windows --arch amd64` (and darwin, linux/arm): the console sends the
/// platform it is given, the API stores it, and a loader of each platform is offered only the
/// manifest made for it, a loader of a platform without one (windows/arm64) none (issue 25).
#[test]
fn manifests_for_windows_and_macos_are_created_and_offered_only_to_their_platform() {
    use mig_protocol::loader::{
        Agent, Environment, ManifestRequest, LOADER_KEY_HEADER, MANIFEST_PATH,
    };
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "bundle", b"agent v1\n");
    let platforms = [
        ("windows", "amd64"),
        ("darwin", "arm64"),
        ("darwin", "amd64"),
        ("linux", "arm"),
    ];
    for (os, arch) in platforms {
        let created = json(&admin1.run(&[
            "--json",
            "create",
            "manifest",
            "--name",
            &format!("for {os}/{arch}"),
            "--target",
            "true",
            "--content",
            archive.to_str().unwrap(),
            "--os",
            os,
            "--arch",
            arch,
        ]));
        assert_eq!(
            created["platform"],
            serde_json::json!({"os": os, "arch": arch})
        );
        let id = created["id"].as_u64().unwrap().to_string();
        let o = admin1.run(&["manifest", &id, "sign"]);
        assert!(
            o.ok().stdout.contains(&format!("  platform: {os}/{arch}")),
            "the statement shown before signing names the platform: {o}"
        );
    }
    for (os, arch) in platforms.into_iter().chain([("windows", "arm64")]) {
        let o = admin1.run(&["create", "loader", "--name", &format!("{os}-{arch}")]);
        let key = loader_key(&o.ok().stdout);
        let id = created_id(&o.stdout).to_string();
        admin1.run(&["loader", &id, "enable"]).ok();
        let req = ManifestRequest {
            agent: Agent {
                name: format!("{os}-{arch}.corbomite"),
                environment: Environment {
                    os: os.into(),
                    arch: arch.into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let r = support::loader_client(&api.base_url)
            .post_json(MANIFEST_PATH, &[(LOADER_KEY_HEADER, &key)], &req)
            .unwrap();
        if platforms.contains(&(os, arch)) {
            assert_eq!(r.status, 200, "{os}/{arch}");
            let body: serde_json::Value =
                serde_json::from_slice(&r.read_capped(1 << 20).unwrap()).unwrap();
            let st = mig_protocol::statement::Statement::parse(
                body["statement"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
            assert_eq!(st.name, format!("for {os}/{arch}"));
            assert_eq!(
                (st.platform.os.as_str(), st.platform.arch.as_str()),
                (os, arch)
            );
        } else {
            assert_eq!(r.status, 404, "{os}/{arch}");
        }
    }
}

/// issue 28 item 3: `manifest N renew` in a script and in the manifest reader makes a staged
/// manifest over the same entries; its signer is shown that it renews N with every entry
/// identical, and once signed it is active and N disabled.
#[test]
fn renew_makes_a_manifest_its_signers_see_is_identical_and_it_replaces_the_old_one() {
    let api = api_with_admin1(1);
    let admin1 = key_file_admin(&api.base_url, "admin1");
    let work = tempfile::tempdir().unwrap();
    let archive = manifest_archive(work.path(), "renewed", b"agent v1\n");
    let created = json(&admin1.run(&[
        "--json",
        "create",
        "manifest",
        "--name",
        "to renew",
        "--target",
        "true",
        "--valid-days",
        "5",
        "--content",
        archive.to_str().unwrap(),
    ]));
    let old = created["id"].as_u64().unwrap();
    let o = admin1.run(&["manifest", &old.to_string(), "renew"]);
    assert!(
        o.failed()
            .stderr
            .contains("only an active manifest is renewed"),
        "{o}"
    );
    admin1.run(&["manifest", &old.to_string(), "sign"]).ok();
    let o = admin1.run(&["status"]);
    assert!(
        o.ok()
            .stdout
            .contains(&format!("`manifest {old} renew` before then")),
        "{o}"
    );

    // Scriptable.
    let o = admin1.run(&["manifest", &old.to_string(), "renew", "--valid-days", "30"]);
    let new = old + 1;
    assert!(
        o.ok().stdout.contains(&format!(
            "Manifest {new} renews manifest {old}: the same 6 entries, expires "
        )),
        "{o}"
    );
    let rec = json(&admin1.run(&["--json", "manifest", &new.to_string()]));
    assert_eq!(rec["renews"], old);
    assert_eq!(rec["status"], "staged");
    assert_eq!(rec["entries"], created["entries"]);

    // Interactive: the reader of the renewal shows what it renews before signing.
    let session = format!("manifest {new}\nsign\ny\nexit\n");
    let o = admin1.session(&session);
    let out = &o.ok().stdout;
    for expected in [
        &format!("  renews:   manifest {old}"),
        &format!(
            "Manifest {new} renews manifest {old} (expires {}): every one of its 6 entries is \
             identical, byte for byte, and so are its target, platform and halt rule.",
            created["expires"].as_str().unwrap()
        ),
        "Status 'active', signed by: admin1",
    ] {
        assert!(out.contains(expected), "missing {expected:?}: {o}");
    }
    let old_rec = json(&admin1.run(&["--json", "manifest", &old.to_string()]));
    assert_eq!(old_rec["status"], "disabled", "the renewal replaced it");
    let o = admin1.run(&["status"]);
    assert!(!o.ok().stdout.contains("renew` before then"), "{o}");

    // In the reader, renew asks first and takes the API's default validity.
    let o = admin1.session(&format!("manifest {new}\nrenew\ny\nexit\n"));
    assert!(
        o.ok().stdout.contains(&format!(
            "renew manifest {new}: a new staged manifest with its 6 entries"
        )) && o
            .stdout
            .contains(&format!("renews manifest {new}: the same 6 entries")),
        "{o}"
    );
}
