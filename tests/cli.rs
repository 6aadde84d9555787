//! The binary as a user runs it: exit codes, where output goes, files written.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::scratch::Scratch;

fn stateplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stateplan"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("STATEPLAN_TEMPLATES")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

/// `stateplan --templates DIR ARGS...`: a platform team's templates.
fn with_templates(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_string_lossy();
    let mut all = vec!["--templates", &dir];
    all.extend_from_slice(args);
    stateplan(&all)
}

/// `stateplan --templates DIR check` of the postgres-ha example: it must
/// fail, and standard error must hold every one of `messages`, which it
/// returns for further assertions.
#[track_caller]
fn check_fails(dir: &Path, messages: &[&str]) -> String {
    let out = with_templates(dir, &["check", "blueprints/postgres-ha.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for message in messages {
        assert!(err.contains(message), "no {message:?} in:\n{err}");
    }
    err
}

/// `stateplan --templates DIR render BLUEPRINT -o OUT`.
fn render_into(dir: &Path, blueprint: &str, out: &Path) -> Output {
    with_templates(dir, &["render", blueprint, "-o", &out.to_string_lossy()])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A built-in template or data file, to copy into a platform team's folder.
fn builtin(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates")
            .join(name),
    )
    .expect("built-in file")
}

fn tempdir(name: &str) -> Scratch {
    Scratch::new(&format!("cli-{name}"))
}

/// The examples in `stateplan --help` that need no cluster, run in order
/// in an empty directory as a new user would: each must succeed.
#[test]
fn offline_help_examples_work_as_written() {
    let help = text(&stateplan(&["--help"]).stdout);
    let examples = help
        .split_once("Examples:")
        .map(|(_, e)| e)
        .expect("help has examples");
    let dir = tempdir("help-examples");
    let mut ran = Vec::new();
    for line in examples.lines() {
        let command = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = command.split_whitespace().collect();
        let [program, sub, args @ ..] = words.as_slice() else {
            continue;
        };
        // plan and apply need a cluster (tests/plan_apply.rs covers them).
        if *program != "stateplan" || matches!(*sub, "plan" | "apply") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_stateplan"))
            .arg(sub)
            .args(args)
            .current_dir(&dir)
            .env_remove("STATEPLAN_TEMPLATES")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "`{}` failed:\n{}",
            command.trim(),
            text(&out.stderr)
        );
        ran.push(*sub);
    }
    assert_eq!(ran, ["init", "check", "render", "explain", "templates"]);
    assert!(dir.join("gitops/kustomization.yaml").is_file());
}

#[test]
fn check_ok_and_error_exit_codes() {
    let ok = stateplan(&["check", "blueprints/postgres-ha.toml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stderr).contains("ok blueprints/postgres-ha.toml: 1 workload"));

    let dir = tempdir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[target]\nsubscription = \"x\"\n").expect("write");
    let out = stateplan(&["check", &bad.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml:2:16"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert!(
        !err.contains("\x1b["),
        "NO_COLOR must disable colour: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = stateplan(&["check", "no/such/blueprint.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read no/such/blueprint.toml"));
}

/// `check --output json` of a blueprint whose one workload (line 8) is
/// `workload`: exit code and the JSON document on stdout.
fn check_json(workload: &str) -> (Option<i32>, serde_json::Value) {
    json_of("check", workload)
}

/// `stateplan --output json COMMAND FILE` on a blueprint whose one workload
/// (line 8) is `workload`: exit code and the one JSON document on stdout;
/// nothing may go to stderr.
fn json_of(command: &str, workload: &str) -> (Option<i32>, serde_json::Value) {
    let dir = tempdir("json");
    let file = dir.join("blueprint.toml");
    std::fs::write(&file, format!("[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg\"\ncluster = \"c\"\nlocation = \"westeurope\"\nkey_vault = \"kv-data\"\n[workloads]\n{workload}\n")).expect("write");
    let out = stateplan(&["--output", "json", command, &file.to_string_lossy()]);
    assert!(out.stderr.is_empty(), "{command}: {}", text(&out.stderr));
    let v = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    (out.status.code(), v)
}

/// Every command that prints data reports errors and warnings the same way
/// under `--output json`: a `diagnostics` list in its one document.
#[test]
fn json_output_carries_errors_and_warnings_for_every_command() {
    for command in ["check", "render", "explain"] {
        let (code, v) = json_of(command, "a = \"postgres 3 replicas 20GB balanced zonal\"");
        assert_eq!(code, Some(1), "{command}");
        assert_eq!(v["diagnostics"][0]["severity"], "error", "{command}: {v}");
        assert_eq!(v["diagnostics"][0]["line"], 8, "{command}");
        // Kafka with 4 brokers: valid, with a warning about the even count.
        let (code, v) = json_of(
            command,
            "e = \"kafka 4 replicas 50Gi balanced zone-redundant\"",
        );
        assert_eq!(code, Some(0), "{command}");
        assert_eq!(v["diagnostics"][0]["severity"], "warning", "{command}: {v}");
        if command == "render" {
            // Azure bodies spell apiVersion as the azure/*.json files do.
            assert!(v["azure"][0]["apiVersion"].is_string(), "{v}");
        }
    }
    let out = stateplan(&[
        "--output",
        "json",
        "templates",
        "show",
        "kubernetes/nope.yaml.j2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no template named")),
        "{v}"
    );
}

#[test]
fn check_json_reports_diagnostics_with_positions() {
    let (code, v) = check_json("a = \"postgres 3 replicas 20GB balanced zonal\"");
    assert_eq!(code, Some(1));
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 8);
    assert_eq!(d["column"], 26);
    assert!(
        d["hint"]
            .as_str()
            .is_some_and(|h| h.contains("200Gi") || h.contains("20Gi")),
        "{d}"
    );
}

/// A passing check in JSON: its warnings and what was checked, one document.
#[test]
fn check_json_on_success_reports_warnings_and_counts() {
    let (code, v) = check_json("events = \"kafka 4 replicas 50Gi balanced zone-redundant\"");
    assert_eq!(code, Some(0));
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
    assert_eq!(v["diagnostics"][0]["line"], 8);
    assert_eq!(v["workloads"], 1);
    assert_eq!(v["kubernetes_objects"], 12);
    assert_eq!(v["azure_resources"], 5);

    let out = stateplan(&["--output", "json", "check", "blueprints/postgres-ha.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    assert_eq!(v["workloads"], 1);
}

#[test]
fn render_to_stdout_is_a_yaml_stream_in_apply_order() {
    let out = stateplan(&["render", "blueprints/postgres-ha.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stream = text(&out.stdout);
    let kinds: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(kinds.first(), Some(&"Namespace"));
    assert_eq!(kinds.last(), Some(&"Schedule"));
    let sts = kinds
        .iter()
        .position(|k| *k == "StatefulSet")
        .expect("has a StatefulSet");
    let svc = kinds
        .iter()
        .position(|k| *k == "Service")
        .expect("has a Service");
    assert!(svc < sts);
    assert!(
        text(&out.stderr).contains("stateplan-pending:"),
        "pending values are listed"
    );
}

#[test]
fn render_tree_is_byte_identical_and_removes_stale_files() {
    let dir = tempdir("tree");
    let out_dir = dir.join("gitops");
    let out_s = out_dir.to_string_lossy().to_string();
    let first = stateplan(&["render", "blueprints/design-example.toml", "-o", &out_s]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let snapshot = read_all(&out_dir);
    assert!(snapshot.iter().any(|(p, _)| p == "kustomization.yaml"));
    assert!(
        snapshot
            .iter()
            .any(|(p, _)| p.starts_with("azure/") && p.ends_with(".json"))
    );
    assert!(
        snapshot
            .iter()
            .any(|(p, _)| p == "cache/kustomization.yaml")
    );
    let second = stateplan(&["render", "blueprints/design-example.toml", "-o", &out_s]);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        snapshot,
        read_all(&out_dir),
        "a second render must be byte-identical"
    );

    // The same blueprint with a workload removed: its files go.
    let fewer = dir.join("design-example.toml");
    let source =
        std::fs::read_to_string("blueprints/design-example.toml").expect("example blueprint");
    std::fs::write(
        &fewer,
        source.replace("cache = \"valkey", "# cache = \"valkey"),
    )
    .expect("write");
    let third = stateplan(&["render", &fewer.to_string_lossy(), "-o", &out_s]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    assert!(
        !out_dir.join("cache").exists(),
        "stale workload folder removed"
    );
    assert!(out_dir.join("orders-db/kustomization.yaml").exists());

    // Another blueprint's render is not replaced (that would delete the
    // first blueprint's objects under GitOps pruning) unless --force.
    let before = read_all(&out_dir);
    let other = stateplan(&["render", "blueprints/postgres-ha.toml", "-o", &out_s]);
    assert_eq!(other.status.code(), Some(1));
    let err = text(&other.stderr);
    assert!(
        err.contains("holds the render of blueprint `design-example`") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(before, read_all(&out_dir), "nothing changed");
    let forced = stateplan(&[
        "render",
        "blueprints/postgres-ha.toml",
        "-o",
        &out_s,
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    let marker = std::fs::read_to_string(out_dir.join(".stateplan-render")).expect("marker");
    assert!(marker.starts_with("# blueprint: orders\n"), "{marker}");

    // A folder stateplan did not write is refused.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("notes.txt"), "mine").expect("write");
    let refused = stateplan(&[
        "render",
        "blueprints/postgres-ha.toml",
        "-o",
        &foreign.to_string_lossy(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).expect("kept"),
        "mine"
    );
}

/// A link committed into a rendered tree (a workload folder pointing
/// elsewhere) must not make render delete or write files outside the tree.
#[cfg(unix)]
#[test]
fn render_refuses_symlinks_inside_the_tree() {
    let dir = tempdir("symlink");
    let out_dir = dir.join("gitops");
    let out_s = out_dir.to_string_lossy().to_string();
    let first = stateplan(&["render", "blueprints/postgres-ha.toml", "-o", &out_s]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let victim = dir.join("victim");
    std::fs::create_dir_all(&victim).expect("mkdir");
    std::fs::write(victim.join("keep.txt"), "keep").expect("write");
    std::fs::remove_dir_all(out_dir.join("orders-db")).expect("rm");
    std::os::unix::fs::symlink(&victim, out_dir.join("orders-db")).expect("symlink");
    // The marker lists a file behind the link, as if render had written it.
    let marker = out_dir.join(".stateplan-render");
    let mut listed = std::fs::read_to_string(&marker).expect("marker");
    listed.push_str("orders-db/keep.txt\n");
    std::fs::write(&marker, &listed).expect("write marker");
    let before = read_all(&dir);
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["render", "blueprints/postgres-ha.toml", "-o", &out_s];
        args.extend_from_slice(extra);
        let r = stateplan(&args);
        assert_eq!(r.status.code(), Some(1));
        let err = text(&r.stderr);
        assert!(
            err.contains("orders-db is a symbolic link inside the output folder")
                && err.contains("nothing was written"),
            "{err}"
        );
        assert_eq!(
            before,
            read_all(&dir),
            "nothing changed, in or outside the tree"
        );
    }
}

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    support::read_tree(dir).into_iter().collect()
}

#[test]
fn no_secret_values_in_any_output() {
    let dir = tempdir("secrets");
    let out_dir = dir.join("out");
    let out = stateplan(&[
        "render",
        "blueprints/design-example.toml",
        "-o",
        &out_dir.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    for (path, content) in read_all(&out_dir) {
        let s = String::from_utf8_lossy(&content);
        assert!(!s.contains("kind: Secret\n"), "{path} renders a Secret");
        assert!(!s.contains("stringData"), "{path} has stringData");
        assert!(!s.contains("\"value\""), "{path} has a secret value field");
    }
}

#[test]
fn explain_text_and_json() {
    let out = stateplan(&["explain", "blueprints/design-example.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    for topic in [
        "disk:",
        "vm-size:",
        "pdb:",
        "placement:",
        "backup:",
        "secrets:",
        "pod-security:",
    ] {
        assert!(t.contains(topic), "explain lacks {topic}\n{t}");
    }
    assert!(t.contains("PremiumV2_LRS"));
    let json = stateplan(&[
        "--output",
        "json",
        "explain",
        "blueprints/mysql-single.toml",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let decisions = v["workloads"][0]["decisions"]
        .as_array()
        .expect("decisions");
    let pdb = decisions
        .iter()
        .find(|d| d["topic"] == "pdb")
        .expect("pdb decision");
    assert_eq!(
        pdb["choice"], "none",
        "single replica: no drain-blocking PDB"
    );
    assert!(
        pdb["reason"]
            .as_str()
            .is_some_and(|r| r.contains("block node drains"))
    );
    let disk = decisions
        .iter()
        .find(|d| d["topic"] == "disk")
        .expect("disk decision");
    assert!(
        disk["choice"]
            .as_str()
            .is_some_and(|c| c.starts_with("Premium_ZRS")),
        "{disk}"
    );
}

#[test]
fn schema_is_json_and_validates_examples() {
    let out = stateplan(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints"))
        .expect("dir")
        .flatten()
    {
        let doc: toml::Value =
            toml::from_str(&std::fs::read_to_string(e.path()).expect("read")).expect("toml");
        let json = serde_json::to_value(doc).expect("to json");
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", e.path().display());
    }
    // And it rejects what check rejects structurally.
    let bad =
        serde_json::json!({"target": {}, "workloads": {"a": {"engine": "postgres", "replica": 3}}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn schema_lists_the_same_workload_keys_as_the_parser() {
    let schema: serde_json::Value =
        serde_json::from_str(stateplan::blueprint::JSON_SCHEMA).expect("json");
    let mut keys: Vec<&str> = schema["$defs"]["workload"]["properties"]
        .as_object()
        .expect("props")
        .keys()
        .map(String::as_str)
        .collect();
    let mut known: Vec<&str> = stateplan::blueprint::WORKLOAD_KEYS.to_vec();
    keys.sort();
    known.sort();
    assert_eq!(keys, known);
}

#[test]
fn init_writes_a_blueprint_that_checks_for_every_engine() {
    let dir = tempdir("init");
    let list = stateplan(&["--output", "json", "templates", "list"]);
    let files: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let engines: Vec<String> = files
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| {
            f["name"]
                .as_str()?
                .strip_prefix("engines/")?
                .strip_suffix("/profile.toml")
                .map(str::to_string)
        })
        .collect();
    assert!(engines.len() >= 7, "{engines:?}");
    for engine in engines {
        let file = dir.join(format!("{engine}.toml"));
        let f = file.to_string_lossy().to_string();
        let out = stateplan(&["init", "--engine", &engine, &f]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let check = stateplan(&["check", &f]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "init --engine {engine} does not check:\n{}",
            text(&check.stderr)
        );
        let again = stateplan(&["init", "--engine", &engine, &f]);
        assert_eq!(again.status.code(), Some(1), "init must not overwrite");
        let written = std::fs::read_to_string(&file).expect("written");
        assert!(written.ends_with('\n') && !written.ends_with("\n\n\n"));
    }
}

#[test]
fn init_refuses_what_check_would_refuse() {
    let dir = tempdir("init-bad");
    for name in ["Orders_DB", "a\" = 1\n[x", "-db", &"n".repeat(41)] {
        let file = dir.join("bp.toml");
        let out = stateplan(&["init", &format!("--name={name}"), &file.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(1), "{name:?}");
        assert!(
            text(&out.stderr).contains("is not valid"),
            "{}",
            text(&out.stderr)
        );
        assert!(!file.exists(), "nothing written for {name:?}");
    }
    // A starter on standard output names itself, so `check -` accepts it,
    // while a blueprint piped in without a name is refused.
    let starter = stateplan(&["init", "-"]);
    assert_eq!(starter.status.code(), Some(0));
    let check = |input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stateplan"))
            .args(["check", "-"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input).expect("write");
        child.wait_with_output().expect("exits")
    };
    let ok = check(&starter.stdout);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let unnamed = text(&starter.stdout).replace("\nname = \"orders-db\"\n", "\n");
    let refused = check(unnamed.as_bytes());
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("a blueprint read from standard input needs a `name`"));

    let out = stateplan(&["init", "--engine", "postgress", "-"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did you mean `postgres`?"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn templates_show_and_unknown_name() {
    let out = stateplan(&["templates", "show", "engines/postgres/profile.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("name = \"postgres\""));
    let bad = stateplan(&["templates", "show", "kubernetes/statefulset.yml.j2"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("did you mean `kubernetes/statefulset.yaml.j2`?"));
}

#[test]
fn broken_platform_template_names_file_and_line() {
    let dir = tempdir("broken-templates");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    std::fs::write(
        dir.join("kubernetes/poddisruptionbudget.yaml.j2"),
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ w.nmae }}\n",
    )
    .expect("write");
    check_fails(&dir, &["poddisruptionbudget.yaml.j2:4:", "undefined"]);
}

/// Invalid YAML from a template points at the template line (and column)
/// that wrote it, showing what it became in the output: text written as it
/// stands at its very byte, an expression's output at the expression.
#[test]
fn invalid_yaml_from_a_template_points_at_the_template_line() {
    let dir = tempdir("yaml-templates");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let pdb = dir.join("kubernetes/poddisruptionbudget.yaml.j2");
    let template = |last_line: &str| {
        format!(
            "{{#- a comment line -#}}\n{{% set n = 1 -%}}\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{{{ w.name }}}}\n  namespace: {{{{ w.namespace }}}}\n  labels: {{{{ w.labels | tojson }}}}\nspec:\n  maxUnavailable: 1\n  selector:\n{last_line}\n"
        )
    };
    // Text after an expression: the error is in the template's own text.
    std::fs::write(
        &pdb,
        template("    matchLabels: {{ w.selector | tojson }} extra: 1"),
    )
    .expect("write");
    check_fails(
        &dir,
        &[
            "error: template kubernetes/poddisruptionbudget.yaml.j2 produced invalid YAML: ",
            &format!("--> {}:12:44", pdb.display()),
            "12 |     matchLabels: {{ w.selector | tojson }} extra: 1",
            // Two template lines wrote nothing: the output line is 10.
            "written as line 10 of the output for workload orders-db: `    matchLabels: {\"app.kubernetes.io/instance\":\"orders-db\"",
            "1 error",
        ],
    );
    // What an expression writes: the error points at the expression.
    std::fs::write(&pdb, template("    matchLabels: {{ \"a: b: c\" }}")).expect("write");
    check_fails(
        &dir,
        &[
            &format!("--> {}:12:", pdb.display()),
            "written as line 10 of the output for workload orders-db: `    matchLabels: a: b: c`",
        ],
    );
    // Columns count characters, not bytes.
    std::fs::write(&pdb, template("    matchLabels: ééé: x")).expect("write");
    let out = with_templates(&dir, &["check", "blueprints/postgres-ha.toml"]);
    let err = text(&out.stderr);
    let message = format!("--> {}:12:21", pdb.display());
    assert!(err.contains(&message), "no {message:?} in:\n{err}");
    assert!(
        err.contains("^ line 10 of the output for workload orders-db"),
        "{err}"
    );
}

/// A check about a field that is not there points at the nearest enclosing
/// one; a schema error about the kind itself points at the apiVersion.
#[test]
fn missing_fields_and_unknown_versions_point_at_the_nearest_line() {
    let dir = tempdir("nearest-line");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let pdb = dir.join("kubernetes/poddisruptionbudget.yaml.j2");
    let write = |api_version: &str, name: &str| {
        std::fs::write(
            &pdb,
            format!("apiVersion: {api_version}\nkind: PodDisruptionBudget\nmetadata:\n{name}  namespace: {{{{ w.namespace }}}}\n  labels: {{{{ w.labels | tojson }}}}\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels: {{{{ w.selector | tojson }}}}\n"),
        )
        .expect("write");
    };
    write("policy/v1", "");
    check_fails(
        &dir,
        &[
            "PodDisruptionBudget has invalid metadata.name ``",
            &format!("--> {}:3:1", pdb.display()),
        ],
    );
    write("policy/v1beta1", "  name: {{ w.name }}\n");
    check_fails(
        &dir,
        &[
            "/apiVersion: no schema for policy/v1beta1 PodDisruptionBudget; PodDisruptionBudget is policy/v1",
            &format!("--> {}:1:1", pdb.display()),
        ],
    );
    // No apiVersion and kind at all: the object's first line, after the
    // template's comments and blank lines.
    std::fs::write(
        &pdb,
        "{# a comment #}\n\n---\nmetadata:\n  name: {{ w.name }}\n  namespace: {{ w.namespace }}\n",
    )
    .expect("write");
    check_fails(
        &dir,
        &[
            "renders an object without apiVersion and kind",
            &format!("--> {}:4:1", pdb.display()),
        ],
    );
}

/// Mistakes in a platform team's data files point at the line that holds
/// them: an engine folder and name that disagree, a default version with no
/// image, an unpinned image, a manifest listing a missing template. All are
/// reported in one run.
#[test]
fn platform_data_errors_name_file_line_and_column() {
    let dir = tempdir("bad-data");
    std::fs::create_dir_all(dir.join("engines/keydb")).expect("mkdir");
    let profile = builtin("engines/valkey/profile.toml")
        .replace("aliases = [\"redis\"]\n", "")
        .replace("default_version = \"8.1\"", "default_version = \"9.0\"")
        .replace("valkey:8.0.2\"", "valkey:latest\"")
        .replace("name = \"password\"", "name = \"password.v2\"")
        .replace("length = 32", "length = 8");
    std::fs::write(dir.join("engines/keydb/profile.toml"), &profile).expect("write");
    std::fs::write(
        dir.join("engines/keydb/pod.yaml.j2"),
        builtin("engines/valkey/pod.yaml.j2"),
    )
    .expect("write");
    // An engine with a profile but no pod template.
    std::fs::create_dir_all(dir.join("engines/nopod")).expect("mkdir");
    std::fs::write(
        dir.join("engines/nopod/profile.toml"),
        builtin("engines/valkey/profile.toml")
            .replace("name = \"valkey\"", "name = \"nopod\"")
            .replace("aliases = [\"redis\"]\n", ""),
    )
    .expect("write");
    let manifest =
        builtin("workload.toml").replace("kubernetes/namespace.yaml.j2", "kubernetes/ns.yaml.j2");
    std::fs::write(dir.join("workload.toml"), manifest).expect("write");

    let out = with_templates(&dir, &["check", "blueprints/postgres-ha.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // Lines of the edited profile: `name` is line 3, `default_version` 5.
    let line_of = |needle: &str| {
        profile
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line in profile")
    };
    for (message, location) in [
        (
            "engine profile says name = \"valkey\" but lives in engines/keydb/",
            format!(
                "engines/keydb/profile.toml:{}:8",
                line_of("name = \"valkey\"")
            ),
        ),
        (
            "default_version \"9.0\" is not in [versions]",
            format!(
                "engines/keydb/profile.toml:{}:19",
                line_of("default_version")
            ),
        ),
        (
            "version 8.0 uses image `docker.io/valkey/valkey:latest` without a pinned tag",
            format!("engines/keydb/profile.toml:{}:9", line_of("valkey:latest")),
        ),
        (
            "secret name `password.v2` is not valid",
            format!("engines/keydb/profile.toml:{}:8", line_of("password.v2")),
        ),
        (
            "secret `password.v2` would be generated with 8 characters, too few to resist guessing",
            format!("engines/keydb/profile.toml:{}:10", line_of("length = 8")),
        ),
        (
            "workload.toml lists `kubernetes/ns.yaml.j2`, which is not a template",
            "workload.toml:6:3".to_string(),
        ),
        (
            "engine `nopod` has no pod template engines/nopod/pod.yaml.j2",
            "--> ".to_string() + &dir.join("engines/nopod/profile.toml").to_string_lossy(),
        ),
    ] {
        assert!(err.contains(message), "no {message:?} in:\n{err}");
        assert!(err.contains(&location), "no {location} in:\n{err}");
    }
    assert!(err.contains("7 errors"), "{err}");
}

/// A platform-team file overrides the built-in of the same name, so a
/// misspelt name would be ignored without a word.
#[test]
fn platform_files_nothing_uses_are_reported() {
    let dir = tempdir("unused");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    std::fs::create_dir_all(dir.join("azure")).expect("mkdir");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write(
        "kubernetes/service-clinet.yaml.j2",
        &builtin("kubernetes/service-client.yaml.j2"),
    );
    write(
        "azure/storage-tier.toml",
        &builtin("azure/storage-tiers.toml"),
    );
    // A helper another template imports is in use.
    write(
        "kubernetes/_team.j2",
        "{% macro team() %}data{% endmacro %}",
    );
    write(
        "kubernetes/namespace.yaml.j2",
        &builtin("kubernetes/namespace.yaml.j2").replacen(
            "-%}",
            "-%}\n{% import \"kubernetes/_team.j2\" as t -%}",
            1,
        ),
    );
    let out = with_templates(&dir, &["check", "blueprints/postgres-ha.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for (file, meant) in [
        (
            "kubernetes/service-clinet.yaml.j2",
            "kubernetes/service-client.yaml.j2",
        ),
        ("azure/storage-tier.toml", "azure/storage-tiers.toml"),
    ] {
        assert!(
            err.contains(&format!("warning: {file} is not used")),
            "{err}"
        );
        assert!(err.contains(&format!("did you mean `{meant}`?")), "{err}");
    }
    assert!(!err.contains("_team.j2 is not used"), "{err}");
    assert!(err.contains("2 warnings"), "{err}");
}

#[test]
fn platform_template_rendering_a_secret_is_refused() {
    let dir = tempdir("secret-template");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    std::fs::write(
        dir.join("kubernetes/configmap.yaml.j2"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\n  namespace: {{ w.namespace }}\nstringData:\n  password: hunter2\n",
    )
    .expect("write");
    let out = with_templates(&dir, &["render", "blueprints/postgres-ha.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("renders a Secret"), "{err}");
    // Pointed at the template line that wrote the kind, and for which
    // workload.
    let file = dir.join("kubernetes/configmap.yaml.j2");
    for message in [
        format!("--> {}:2:1", file.display()),
        "2 | kind: Secret".into(),
        "^ line 2 of the output for workload orders-db".into(),
    ] {
        assert!(err.contains(&message), "no {message:?} in:\n{err}");
    }
    assert!(text(&out.stdout).is_empty(), "nothing is printed on error");
}

/// A container an engine's pod template writes is checked there, and its
/// problems name that template, not the StatefulSet template it ends up in.
#[test]
fn engine_pod_template_problems_name_the_engine_template() {
    let dir = tempdir("pod-template");
    std::fs::create_dir_all(dir.join("engines/postgres")).expect("mkdir");
    let pod = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/engines/postgres/pod.yaml.j2"),
    )
    .expect("built-in pod template");
    let (head, tail) = pod.split_once("containers:\n").expect("a containers list");
    let sidecar = "- name: debug\n  image: docker.io/library/busybox\n  securityContext: {\"privileged\": true}\n";
    std::fs::write(
        dir.join("engines/postgres/pod.yaml.j2"),
        format!("{head}containers:\n{sidecar}{tail}"),
    )
    .expect("write");
    let err = check_fails(
        &dir,
        &[
            "template engines/postgres/pod.yaml.j2: container debug uses image `docker.io/library/busybox` without a pinned tag",
            "template engines/postgres/pod.yaml.j2: pod violates the restricted Pod Security Standard: container debug: privileged",
            "container debug: allowPrivilegeEscalation is not false",
            "container debug: capabilities.drop lacks ALL",
        ],
    );
    let file = dir.join("engines/postgres/pod.yaml.j2");
    // Each is pointed at the line of the container (or its image) that the
    // engine's template wrote.
    let item = head.lines().count() + 2;
    for message in [
        format!("--> {}:{}:3", file.display(), item + 1),
        format!("{} |   image: docker.io/library/busybox", item + 1),
        format!("--> {}:{item}:3", file.display()),
        format!("{item} | - name: debug"),
    ] {
        assert!(err.contains(&message), "no {message:?} in:\n{err}");
    }
    assert!(!err.contains("statefulset.yaml.j2"), "{err}");
    assert!(err.contains("4 errors"), "{err}");
    // A key a pod fragment does not have points at that key.
    std::fs::write(
        dir.join("engines/postgres/pod.yaml.j2"),
        format!("{head}sidecars: []\ncontainers:\n{tail}"),
    )
    .expect("write");
    let line = head.lines().count() + 1;
    check_fails(
        &dir,
        &[
            "template engines/postgres/pod.yaml.j2: unknown key `sidecars`",
            &format!("--> {}:{line}:1", file.display()),
            &format!("{line} | sidecars: []"),
        ],
    );
}

/// What a platform team's template renders is checked against the
/// Kubernetes schemas, as the API server would with strict field
/// validation: a misspelt field or a wrong type is an error at render time,
/// naming the template, the object and the field, and nothing is written.
#[test]
fn platform_templates_are_held_to_the_kubernetes_schemas() {
    let dir = tempdir("schema-template");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let service = builtin("kubernetes/service-client.yaml.j2").replace(
        "  type: ClusterIP\n",
        "  type: ClusterIP\n  externalIP: [10.0.0.1]\n  sessionAffinity: 3\n",
    );
    assert!(
        service.contains("externalIP:"),
        "the built-in template changed"
    );
    std::fs::write(dir.join("kubernetes/service-client.yaml.j2"), &service).expect("write");
    let out_dir = dir.join("gitops");
    let out = render_into(&dir, "blueprints/postgres-ha.toml", &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for message in [
        "template kubernetes/service-client.yaml.j2: Service orders/orders-db would be rejected by the API server: /spec/externalIP: unknown field \"externalIP\" (not declared in schema); did you mean \"externalIPs\"?",
        "template kubernetes/service-client.yaml.j2: Service orders/orders-db would be rejected by the API server: /spec/sessionAffinity: 3 is not of types \"null\", \"string\"",
        "help: stateplan checks what a platform team's templates render against the schemas of Kubernetes 1.33",
        "2 errors",
    ] {
        assert!(err.contains(message), "no {message:?} in:\n{err}");
    }
    // Each points at the template line that wrote the field.
    let file = dir.join("kubernetes/service-client.yaml.j2");
    let line = service
        .lines()
        .position(|l| l.starts_with("  externalIP:"))
        .expect("inserted")
        + 1;
    for message in [
        format!("--> {}:{line}:3", file.display()),
        format!("{line} |   externalIP: [10.0.0.1]"),
        format!("--> {}:{}:3", file.display(), line + 1),
        "^ line 8 of the output for workload orders-db".into(),
    ] {
        assert!(err.contains(&message), "no {message:?} in:\n{err}");
    }
    assert!(!out_dir.exists(), "nothing is written");

    // A mistake in an engine's pod template is reported there, with its
    // path in the pod fragment, not in the StatefulSet it ends up in.
    let dir = tempdir("schema-pod-template");
    std::fs::create_dir_all(dir.join("engines/postgres")).expect("mkdir");
    let pod = builtin("engines/postgres/pod.yaml.j2");
    let (head, tail) = pod
        .split_once("  imagePullPolicy: ")
        .expect("a pull policy");
    std::fs::write(
        dir.join("engines/postgres/pod.yaml.j2"),
        format!("{head}  imagePullPolicyy: {tail}"),
    )
    .expect("write");
    let out = with_templates(&dir, &["check", "blueprints/postgres-ha.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = dir.join("engines/postgres/pod.yaml.j2");
    let line = builtin("engines/postgres/pod.yaml.j2")
        .lines()
        .position(|l| l.starts_with("  imagePullPolicy: "))
        .expect("a pull policy")
        + 1;
    for message in [
        "template engines/postgres/pod.yaml.j2: the pod's containers and volumes would be rejected by the API server: /initContainers/0/imagePullPolicyy: unknown field \"imagePullPolicyy\" (not declared in schema); did you mean \"imagePullPolicy\"?".to_string(),
        format!("--> {}:{line}:3", file.display()),
    ] {
        assert!(err.contains(&message), "no {message:?} in:\n{err}");
    }
    assert!(!err.contains("statefulset.yaml.j2"), "{err}");

    // The platform team's example override renders objects the schemas accept.
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/platform-templates");
    let out = with_templates(&templates, &["check", "tests/platform-blueprint.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn completions_are_generated() {
    let out = stateplan(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("stateplan"));
}

#[test]
fn help_has_examples() {
    let out = stateplan(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Examples:"));
    let out = stateplan(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("stateplan "));
}

/// `plan` exits 2 when it finds changes, so a mistyped command line must
/// not exit 2 as clap does by default: CI would read it as drift.
#[test]
fn usage_errors_exit_1_not_plans_changes_code() {
    for args in [
        &["plan", "blueprints/postgres-ha.toml", "--bogus"][..],
        &["plan", "blueprints/postgres-ha.toml", "--only", "k8s"],
        &["plan"],
        &["render"],
        &["no-such-command"],
    ] {
        let out = stateplan(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

/// minijinja's compiler panics on some malformed tags (an `import` whose
/// `as` is followed by an expression): that is an error at the tag, not a
/// crash, for the object templates and for `init`'s starter.
#[test]
fn templates_the_template_engine_cannot_compile_are_errors_not_crashes() {
    let dir = tempdir("engine-panic");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let pdb = dir.join("kubernetes/poddisruptionbudget.yaml.j2");
    let broken =
        builtin("kubernetes/poddisruptionbudget.yaml.j2").replacen(" as m ", " as --- m ", 1);
    assert!(broken.contains("as --- m"), "the built-in template changed");
    std::fs::write(&pdb, broken).expect("write");
    let err = check_fails(
        &dir,
        &[
            "error: template kubernetes/poddisruptionbudget.yaml.j2: `import … as` must be followed by a name, not `--- m`",
            &format!("--> {}:1:", pdb.display()),
            "help: write e.g. `{% import \"kubernetes/_metadata.j2\" as m %}`",
        ],
    );
    assert!(!err.contains("panicked"), "{err}");

    std::fs::remove_file(&pdb).expect("rm");
    std::fs::write(
        dir.join("starter.toml.j2"),
        "{% import 'x' as (a, b) %}name = \"x\"\n",
    )
    .expect("write");
    let out = with_templates(&dir, &["init", "-"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("starter.toml.j2: minijinja failed on it"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
}

/// What a macro returns is written where it is called, so that is where an
/// error in it is pointed at; the hint names the macro's own file and line,
/// followed through a re-export (`_macros.j2` imports the metadata macros).
#[test]
fn a_mistake_in_a_macro_names_the_macro() {
    let dir = tempdir("macro-output");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let metadata = builtin("kubernetes/_metadata.j2");
    let broken = metadata.replace(
        ",\"labels\":{{ w.labels | tojson }}\n",
        ",\"labels\":{{ w.labels | tojson }}: x\n",
    );
    assert_ne!(broken, metadata, "the built-in macros changed");
    let path = dir.join("kubernetes/_metadata.j2");
    std::fs::write(&path, &broken).expect("write");
    let line = 1 + metadata
        .lines()
        .position(|l| l.contains("macro metadata("))
        .expect("a metadata macro");
    let call_line = 1 + builtin("kubernetes/poddisruptionbudget.yaml.j2")
        .lines()
        .position(|l| l.contains("{{ m.metadata("))
        .expect("the PDB calls the macro");
    check_fails(
        &dir,
        &[
            "error: template kubernetes/poddisruptionbudget.yaml.j2 produced invalid YAML",
            &format!("--> templates/kubernetes/poddisruptionbudget.yaml.j2:{call_line}:"),
            &format!(
                "help: this expression writes what macro `metadata` returns, and the macro is defined at {}:{line}",
                path.display()
            ),
        ],
    );
    // The platform example's client Service calls it through `_macros.j2`.
    let service = dir.join("kubernetes/service-client.yaml.j2");
    std::fs::copy(
        "tests/platform-templates/kubernetes/service-client.yaml.j2",
        &service,
    )
    .expect("copy");
    let out = with_templates(&dir, &["check", "blueprints/postgres-ha.toml"]);
    let err = text(&out.stderr);
    let service_error = err
        .split("\nerror: ")
        .find(|e| e.contains(&format!("--> {}:", service.display())))
        .unwrap_or_else(|| panic!("no error in the client Service template:\n{err}"));
    let message = format!(
        "macro `metadata` returns, and the macro is defined at {}:{line}",
        path.display()
    );
    assert!(
        service_error.contains(&message),
        "no {message:?} in:\n{service_error}"
    );
}

/// Fuel bounds how many instructions a template runs, not how much they
/// write: a template's output is capped, and the write past the cap is
/// pointed at, instead of gigabytes being taken before any check runs.
#[test]
fn a_template_that_writes_too_much_is_stopped() {
    let dir = tempdir("huge-output");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let pdb = dir.join("kubernetes/poddisruptionbudget.yaml.j2");
    std::fs::write(
        &pdb,
        "apiVersion: policy/v1\n{% for i in range(1000) %}\n# {{ \"x\" * 1000000 }}\n{% endfor %}\n",
    )
    .expect("write");
    check_fails(
        &dir,
        &[
            "error: template kubernetes/poddisruptionbudget.yaml.j2 wrote more than 8 MiB for workload orders-db",
            &format!("--> {}:3:6", pdb.display()),
            "^ this write took the output for workload orders-db past the cap",
            "help: a template writes a few KiB per object; look for a loop over a huge range or a string repeated many times",
        ],
    );
}

/// A check across objects points at the template line too: here the
/// Service's, though the StatefulSet's ports are what it is checked against.
#[test]
fn service_target_port_must_exist_in_the_pod() {
    let dir = tempdir("bad-port");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let builtin = stateplan(&["templates", "show", "kubernetes/service-client.yaml.j2"]);
    let builtin = text(&builtin.stdout);
    let line = 1 + builtin
        .lines()
        .position(|l| l.contains("targetPort: {{ p.name }}"))
        .expect("the built-in template names its target port");
    let broken = builtin.replace("targetPort: {{ p.name }}", "targetPort: sql");
    let path = dir.join("kubernetes/service-client.yaml.j2");
    std::fs::write(&path, broken).expect("write");
    check_fails(
        &dir,
        &[
            "targets port `sql`, which no container of StatefulSet orders-db declares",
            &format!("--> {}:{line}:5", path.display()),
            &format!("{line} |     targetPort: sql"),
        ],
    );
}

/// A platform team changes every object's metadata in one file: the object
/// templates import `_metadata.j2`, and `_macros.j2` (which the platform's
/// own client Service template imports) re-exports it.
#[test]
fn overriding_the_metadata_macros_reaches_every_object() {
    let dir = tempdir("metadata");
    for (rel, bytes) in support::read_tree(Path::new("tests/platform-templates")) {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::write(&to, bytes).expect("copy");
    }
    let builtin = stateplan(&["templates", "show", "kubernetes/_metadata.j2"]);
    assert_eq!(builtin.status.code(), Some(0), "{}", text(&builtin.stderr));
    let with_cost_centre = text(&builtin.stdout).replace(
        r#","labels":{{ w.labels | tojson }}"#,
        r#","labels":{{ w.labels | merge({"example.com/cost-centre": "cc-42"}) | tojson }}"#,
    );
    assert_ne!(with_cost_centre, text(&builtin.stdout));
    std::fs::write(dir.join("kubernetes/_metadata.j2"), with_cost_centre).expect("write");
    let out = with_templates(&dir, &["render", "tests/platform-blueprint.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stream = text(&out.stdout);
    let workload_objects: Vec<&str> = stream
        .split("---\n")
        .filter(|d| d.contains("stateplan.io/workload:"))
        .collect();
    assert!(workload_objects.len() >= 8, "{stream}");
    for doc in &workload_objects {
        assert!(doc.contains("example.com/cost-centre: cc-42"), "{doc}");
    }
    // The platform's own client Service, which imports _macros.j2.
    assert!(
        workload_objects
            .iter()
            .any(|d| d.contains("type: LoadBalancer") && d.contains("cc-42"))
    );

    // An override that drops the ownership labels: the errors name the
    // objects, and the hint names the overriding file as the likely cause.
    let dropped = text(&builtin.stdout).replace(
        r#","labels":{{ w.labels | tojson }}"#,
        r#","labels":{"team": "data"}"#,
    );
    std::fs::write(dir.join("kubernetes/_metadata.j2"), dropped).expect("write");
    let out = with_templates(&dir, &["check", "tests/platform-blueprint.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let meta = dir.join("kubernetes/_metadata.j2");
    assert!(err.contains("lacks the label"), "{err}");
    assert!(
        err.contains(&format!(
            "the labels come from the metadata macros, which {} overrides",
            meta.display()
        )),
        "{err}"
    );
}

#[test]
fn a_large_fleet_lists_a_few_placeholders_and_says_where_the_rest_are() {
    let dir = tempdir("fleet");
    let mut bp = String::from(
        "name = \"fleet\"\n[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg\"\ncluster = \"aks\"\nlocation = \"westeurope\"\nkey_vault = \"kv-fleet\"\n[workloads]\n",
    );
    for i in 0..6 {
        bp.push_str(&format!(
            "db{i} = \"postgres 1 replica 10Gi balanced none\"\n"
        ));
    }
    let file = dir.join("fleet.toml");
    std::fs::write(&file, bp).expect("write");
    let out = stateplan(&["render", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    // Five placeholders per workload (client and tenant ID, issuer, the
    // principal of each secret's role assignment): twelve listed, eighteen
    // summarised.
    assert!(
        err.contains("30 value(s) are known only after Azure"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains(" ← ")).count(),
        12,
        "{err}"
    );
    assert!(
        err.contains("... and 18 more (`-o DIR` writes all of them to azure/pending-values.json"),
        "{err}"
    );

    let tree = dir.join("tree");
    let out = stateplan(&[
        "render",
        &file.to_string_lossy(),
        "-o",
        &tree.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("... and 18 more (all of them are in azure/pending-values.json)")
    );
    let listed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tree.join("azure/pending-values.json")).expect("pending file"),
    )
    .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(30));
}

/// A template that writes one object twice would have the second copy
/// replace the first (and `-o` list one file twice); so would a misspelt
/// attribute pass as `null`. Both are errors that write nothing.
#[test]
fn duplicate_objects_and_undefined_values_from_templates_are_errors() {
    let dir = tempdir("dup-object");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let service = builtin("kubernetes/service-client.yaml.j2");
    std::fs::write(
        dir.join("kubernetes/service-client.yaml.j2"),
        format!(
            "{service}\n---\n{}",
            service.lines().skip(1).collect::<Vec<_>>().join("\n")
        ),
    )
    .expect("write");
    let out_dir = dir.join("out");
    let out = render_into(&dir, "blueprints/postgres-ha.toml", &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("workload `orders-db` renders Service/orders/orders-db twice"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing written");

    let dir = tempdir("undefined-attr");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    let sa = builtin("kubernetes/serviceaccount.yaml.j2");
    assert!(sa.contains("w.identity.tenant_id"));
    std::fs::write(
        dir.join("kubernetes/serviceaccount.yaml.j2"),
        sa.replace("w.identity.tenant_id", "w.identity.tenant_idd"),
    )
    .expect("write");
    check_fails(&dir, &["tojson of an undefined value"]);
}

/// Values a template writes as they come must stay strings: `1e12` is a
/// quantity, not the YAML float 1000000000000.0.
#[test]
fn storage_in_exponent_form_renders_as_a_quantity() {
    let dir = tempdir("exponent");
    let bp = dir.join("bp.toml");
    std::fs::write(
        &bp,
        "name = \"t\"\n[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg\"\ncluster = \"aks\"\nlocation = \"westeurope\"\nkey_vault = \"kv-x\"\n[workloads]\ndb = \"postgres 1 replica 1e12 standard none\"\n",
    )
    .expect("write");
    let out = stateplan(&["render", &bp.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(yaml.contains("          storage: \"1e12\"\n"), "{yaml}");
}

/// A runaway loop in a platform team's template stops with the template's
/// name instead of hanging the render.
#[test]
fn a_runaway_template_loop_is_stopped() {
    let dir = tempdir("runaway");
    std::fs::create_dir_all(dir.join("kubernetes")).expect("mkdir");
    std::fs::write(
        dir.join("kubernetes/service-client.yaml.j2"),
        format!(
            "{}\n{{% for i in range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}\n",
            builtin("kubernetes/service-client.yaml.j2")
        ),
    )
    .expect("write");
    let out = with_templates(&dir, &["check", "blueprints/mysql-single.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("template kubernetes/service-client.yaml.j2 (line")
            && err.contains("instructions without finishing"),
        "{err}"
    );
}
