//! A whole deployment as the operator's walk-through builds it: mig-api with two administrators
//! (admin1 bootstrapped on the server and signing through GnuPG, admin2 created from the console
//! and signing with a key file), manifests created and signed through mig-console, loaders
//! created and enabled through mig-console.

use crate::admin::{created_id, loader_key, Admin};
use crate::{dev_key, tar_gz, ApiOptions, ApiServer};
use std::path::{Path, PathBuf};

pub struct Deployment {
    pub api: ApiServer,
    pub admin1: Admin,
    pub admin2: Admin,
    work: tempfile::TempDir,
}

impl Deployment {
    /// mig-api requiring `required` signatures, with admin1 and admin2.
    pub fn start(opts: ApiOptions) -> Deployment {
        let api = ApiServer::start(opts);
        api.add_investigator(
            "admin1",
            &dev_key("admin1.pub.asc"),
            "PermAdmin,PermManifest,PermLoader",
        )
        .ok();
        let admin1 = Admin::with_gpg(&api.base_url, "admin1");
        let pubkey = dev_key("admin2.pub.asc");
        let pubkey = pubkey.to_str().expect("utf-8 path");
        admin1
            .run(&[
                "create",
                "investigator",
                "--name",
                "admin2",
                "--pubkey",
                pubkey,
                "--perms",
                "PermManifest",
            ])
            .ok();
        let admin2 = Admin::with_key_file(&api.base_url, "admin2");
        Deployment {
            api,
            admin1,
            admin2,
            work: tempfile::tempdir().expect("a work directory"),
        }
    }

    /// Packs `files` with GNU `tar -czf` as `<bundle>.tar.gz`.
    pub fn archive(&self, bundle: &str, files: &[(&str, &[u8])]) -> PathBuf {
        tar_gz(self.work.path(), bundle, files)
    }

    /// `create manifest` through the console; returns the manifest id.
    #[track_caller]
    pub fn create_manifest(
        &self,
        name: &str,
        target: &str,
        archive: &Path,
        platform: (&str, &str),
    ) -> u64 {
        self.create_manifest_with(name, target, archive, platform, &[])
    }

    /// [`Deployment::create_manifest`] with more flags (`--v1`).
    #[track_caller]
    pub fn create_manifest_with(
        &self,
        name: &str,
        target: &str,
        archive: &Path,
        platform: (&str, &str),
        flags: &[&str],
    ) -> u64 {
        let content = archive.to_str().expect("utf-8 path");
        let mut args = vec![
            "create",
            "manifest",
            "--name",
            name,
            "--target",
            target,
            "--content",
            content,
            "--os",
            platform.0,
            "--arch",
            platform.1,
        ];
        args.extend_from_slice(flags);
        let rec = self.admin1.json(&args);
        assert_eq!(rec["status"], "staged", "{rec}");
        rec["id"].as_u64().expect("manifest id")
    }

    /// `manifest ID sign --content ARCHIVE` by each of `admins`; returns the status after.
    #[track_caller]
    pub fn sign(&self, id: u64, archive: &Path, admins: &[&Admin]) -> String {
        let id = id.to_string();
        for a in admins {
            a.run(&[
                "manifest",
                &id,
                "sign",
                "--content",
                archive.to_str().expect("utf-8 path"),
            ])
            .ok();
        }
        self.admin1.json(&["manifest", &id, "json"])["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `create loader` then `loader ID enable`; returns (id, key).
    #[track_caller]
    pub fn enrol_loader(&self, name: &str, expectenv: Option<&str>) -> (u64, String) {
        let mut args = vec!["create", "loader", "--name", name];
        if let Some(e) = expectenv {
            args.extend(["--expectenv", e]);
        }
        let out = self.admin1.run(&args);
        let key = loader_key(&out.ok().stdout);
        let id = created_id(&out.stdout);
        self.admin1.run(&["loader", &id.to_string(), "enable"]).ok();
        (id, key)
    }

    /// The loader's record as the API shows it.
    pub fn loader(&self, id: u64) -> serde_json::Value {
        self.admin1.json(&["loader", &id.to_string(), "json"])
    }
}
