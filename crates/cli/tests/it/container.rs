//! The container files (Dockerfile, compose.yaml), checked for what can be checked without
//! Docker: every `statuslab` argument and `STATUSLAB_*` variable they use exists and parses as
//! `statuslab` would parse it, the ports agree, the health check's tool is installed, and the
//! compose file is YAML with two statuslab instances on one Redis.

use clap::CommandFactory;
use statuslab::{Cli, Command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every variable `statuslab serve` reads, with the flag it stands for (`None`: a variable
/// without a flag, the Redis password).
fn serve_variables() -> BTreeMap<String, Option<String>> {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let mut vars: BTreeMap<String, Option<String>> = serve
        .get_arguments()
        .filter_map(|a| {
            let var = a.get_env()?.to_string_lossy().into_owned();
            Some((var, a.get_long().map(str::to_owned)))
        })
        .collect();
    vars.insert("STATUSLAB_REDIS_PASSWORD".to_owned(), None);
    vars
}

/// What a container's `statuslab serve` comes to.
#[derive(Debug)]
struct Served {
    listen: std::net::SocketAddr,
    store: String,
    data_dir: String,
}

/// `statuslab ARGS` with `vars` given as the flags they stand for, parsed as the binary parses
/// its command line (unknown flags, variables and bad values are errors).
fn parse_serve(args: &[String], vars: &[(String, String)]) -> Result<Served, String> {
    let known = serve_variables();
    let mut line: Vec<OsString> = vec!["statuslab".into()];
    line.extend(args.iter().map(OsString::from));
    for (var, value) in vars {
        match known.get(var) {
            None => return Err(format!("{var} is no statuslab variable")),
            Some(None) => {}
            Some(Some(long)) => line.push(format!("--{long}={value}").into()),
        }
    }
    match statuslab::parse_from(&line) {
        Ok(Cli {
            command: Command::Serve(s),
        }) => Ok(Served {
            listen: s.listen,
            store: s.store.clone(),
            data_dir: s.data_dir.display().to_string(),
        }),
        Ok(other) => Err(format!("{line:?} is not serve: {other:?}")),
        Err(statuslab::ParseError::Clap(e)) => Err(format!("{line:?}: {}", e.render())),
        Err(statuslab::ParseError::Config(e)) => Err(format!("{line:?}: {e}")),
    }
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (op.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// A JSON-array (exec form) instruction's words.
fn exec_form(rest: &str) -> Vec<String> {
    let start = rest
        .find('[')
        .unwrap_or_else(|| panic!("{rest:?} is not in exec form"));
    serde_json::from_str(&rest[start..]).unwrap_or_else(|e| panic!("{rest:?}: {e}"))
}

#[test]
fn the_dockerfile_runs_statuslab_as_its_flags_and_variables_say() {
    let steps = instructions(&read("Dockerfile"));
    let all = |op: &str| -> Vec<&String> {
        steps
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, r)| r)
            .collect()
    };
    let from = all("FROM");
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    assert!(
        from[0].starts_with("rust:"),
        "built with the Rust image: {from:?}"
    );
    let runtime = from.last().expect("a runtime stage");
    assert!(
        !runtime.starts_with("rust:"),
        "runs on a small image: {runtime}"
    );
    // Only the runtime stage's instructions count from here on.
    let last_from = steps.iter().rposition(|(o, _)| o == "FROM").expect("FROM");
    let runtime_steps = &steps[last_from..];
    let user = all("USER");
    let user = user.last().expect("a USER");
    assert!(!["root", "0"].contains(&user.as_str()), "non-root: {user}");

    let mut vars = Vec::new();
    for env in all("ENV") {
        for pair in env.split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
            vars.push((k.to_owned(), v.to_owned()));
        }
    }
    let mut line = exec_form(all("ENTRYPOINT").last().expect("an ENTRYPOINT"));
    assert_eq!(line.remove(0), "statuslab", "the entry point is statuslab");
    line.extend(exec_form(all("CMD").last().expect("a CMD")));
    let served = parse_serve(&line, &vars).expect("statuslab parses the command");
    assert_eq!(
        served.listen.ip().to_string(),
        "0.0.0.0",
        "reachable from outside"
    );
    let port = served.listen.port();
    assert_eq!(*all("EXPOSE").last().expect("EXPOSE"), &port.to_string());
    assert_eq!(served.store, "embedded");
    let volume = all("VOLUME");
    let volume = volume.last().expect("a VOLUME");
    assert!(
        volume.contains(&format!("\"{}\"", served.data_dir)),
        "the embedded store ({}) is on the volume {volume}",
        served.data_dir
    );

    let check = all("HEALTHCHECK");
    let check = check.last().expect("a HEALTHCHECK");
    let cmd = exec_form(check.split_once("CMD").expect("HEALTHCHECK … CMD").1);
    let url = format!("http://127.0.0.1:{port}/healthz");
    assert!(cmd.contains(&url), "{cmd:?} asks {url}");
    let installed = runtime_steps
        .iter()
        .any(|(o, r)| o == "RUN" && r.contains("apt-get install") && r.contains(&cmd[0]));
    assert!(installed, "{} is installed in the runtime stage", cmd[0]);
}

fn get<'a>(y: &'a Yaml, key: &str) -> &'a Yaml {
    &y[key]
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_runs_two_instances_on_one_redis() {
    let docs = YamlLoader::load_from_str(&read("compose.yaml")).expect("compose.yaml is YAML");
    let compose = docs.first().expect("one document");
    let services = get(compose, "services").as_hash().expect("services");
    let redis: Vec<&str> = services
        .iter()
        .filter(|(_, s)| {
            get(s, "image")
                .as_str()
                .is_some_and(|i| i.starts_with("redis"))
        })
        .filter_map(|(name, _)| name.as_str())
        .collect();
    let [redis] = redis.as_slice() else {
        panic!("one Redis service: {redis:?}")
    };
    let expose = instructions(&read("Dockerfile"))
        .into_iter()
        .filter(|(o, _)| o == "EXPOSE")
        .map(|(_, r)| r)
        .next_back()
        .expect("EXPOSE");
    let instances: Vec<(&str, &Yaml)> = services
        .iter()
        .filter(|(_, s)| !get(s, "build").is_badvalue())
        .map(|(name, s)| (name.as_str().expect("a service name"), s))
        .collect();
    assert_eq!(instances.len(), 2, "two statuslab instances: {instances:?}");
    let mut host_ports = Vec::new();
    for (name, service) in instances {
        let vars: Vec<(String, String)> = get(service, "environment")
            .as_hash()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        let v = v
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| v.as_i64().map(|n| n.to_string()))
                            .unwrap_or_default();
                        (k.as_str().expect("a variable name").to_owned(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let command = strings(get(service, "command"));
        let served = parse_serve(&command, &vars).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            served.store,
            format!("redis://{redis}:6379"),
            "{name} uses the Redis service"
        );
        let depends = get(service, "depends_on");
        assert!(
            !get(depends, redis).is_badvalue() || strings(depends).contains(&(*redis).to_owned()),
            "{name} depends on {redis}"
        );
        for mapping in strings(get(service, "ports")) {
            let (host, container) = mapping.rsplit_once(':').expect("HOST:CONTAINER");
            assert_eq!(container, expose, "{name} maps the exposed port");
            host_ports.push(host.to_owned());
        }
    }
    host_ports.sort();
    host_ports.dedup();
    assert_eq!(host_ports.len(), 2, "each instance on a port of its own");
}

/// The build context leaves out what the image does not need (above all `target/`), and keeps
/// what the build reads.
#[test]
fn the_docker_context_skips_the_build_output() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    assert!(ignored.iter().any(|l| l == "target"), "{ignored:?}");
    for needed in ["crates", "Cargo.toml", "Cargo.lock"] {
        assert!(!ignored.iter().any(|l| l == needed), "{needed} is needed");
    }
}
