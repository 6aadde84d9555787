//! `render -o DIR`: a GitOps tree for Argo CD / Flux. One file per object, a
//! `kustomization.yaml` per folder and one at the top, Azure bodies as JSON
//! under `azure/`. The output is byte-identical on every run, and files a
//! previous render wrote but this one does not are removed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::azure::AzureBody;
use super::{AzureResource, Body, Rendered};
use crate::compile::DesiredState;

/// Lists the files of the last render, so the next one can remove stale ones
/// without touching anything else in the folder. The first line names the
/// blueprint rendered there.
const MARKER: &str = ".stateplan-render";
/// Starts the marker's first line; the blueprint name follows.
const MARKER_BLUEPRINT: &str = "# blueprint: ";

/// Why a tree could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// The folder has files stateplan did not write.
    NotOurs(PathBuf),
    /// The folder holds the render of another blueprint (named), whose
    /// files this render would delete.
    OtherBlueprint(PathBuf, String),
    /// A path inside the folder is a symbolic link: following it would
    /// write or delete files outside the tree.
    Symlink(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NotOurs(p) => write!(
                f,
                "{} is not empty and was not written by stateplan render",
                p.display()
            ),
            WriteError::OtherBlueprint(p, name) => write!(
                f,
                "{} holds the render of blueprint `{name}`; rendering another blueprint there would delete its files",
                p.display()
            ),
            WriteError::Symlink(p) => write!(
                f,
                "{} is a symbolic link inside the output folder",
                p.display()
            ),
            WriteError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

/// The files of a tree in a stable order. Object files borrow the rendered
/// YAML, so a large tree is not held twice in memory.
#[derive(Clone, PartialEq)]
pub struct Tree<'a> {
    /// The blueprint's name, recorded in the marker.
    blueprint: String,
    /// Starts every YAML file: where it came from and not to edit it.
    header: String,
    files: BTreeMap<String, Content<'a>>,
}

#[derive(Clone)]
enum Content<'a> {
    /// The header, then this YAML.
    Yaml(Cow<'a, str>),
    /// An Azure resource as pretty JSON, produced when written.
    Azure(&'a dyn AzureFile),
    /// Written as is (kustomizations carry the header already, JSON none).
    Text(String),
}

impl PartialEq for Content<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Content::Yaml(a), Content::Yaml(b)) => a == b,
            (Content::Azure(a), Content::Azure(b)) => a.json() == b.json(),
            (Content::Text(a), Content::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// An Azure resource's file under `azure/`.
trait AzureFile {
    fn json(&self) -> String;
}

impl<A: AzureBody> AzureFile for AzureResource<A> {
    fn json(&self) -> String {
        pretty_json(&serde_json::json!({
            "kind": self.kind.as_str(),
            "id": self.id,
            "apiVersion": self.api_version,
            "workloads": self.workloads,
            "body": self.body.value(),
        }))
    }
}

impl Tree<'_> {
    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files (never, for a rendered blueprint).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Relative paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.files.keys()
    }

    /// Relative path → full content.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(path, content)| (path.clone(), self.text(content).into_owned()))
            .collect()
    }

    /// A file's content in two pieces (the header and the object's YAML,
    /// or one text and nothing), so writing never joins them.
    fn pieces<'s>(&'s self, content: &'s Content<'_>) -> [Cow<'s, str>; 2] {
        match content {
            Content::Yaml(yaml) => [Cow::Borrowed(&self.header), Cow::Borrowed(yaml)],
            Content::Azure(resource) => [Cow::Owned(resource.json()), Cow::Borrowed("")],
            Content::Text(text) => [Cow::Borrowed(text), Cow::Borrowed("")],
        }
    }

    fn text<'s>(&'s self, content: &'s Content<'_>) -> Cow<'s, str> {
        match self.pieces(content) {
            [only, rest] if rest.is_empty() => only,
            [header, yaml] => Cow::Owned(header.into_owned() + &yaml),
        }
    }

    fn write_file(&self, path: &Path, content: &Content<'_>) -> io::Result<()> {
        let mut f = io::BufWriter::new(std::fs::File::create(path)?);
        for piece in self.pieces(content) {
            f.write_all(piece.as_bytes())?;
        }
        f.flush()
    }
}

/// The GitOps tree of a render.
pub fn tree<'a, B: Body>(rendered: &'a Rendered<B>, state: &DesiredState) -> Tree<'a> {
    // The path is the user's; a line break in it would end the comment.
    let mut file = String::new();
    for c in state.blueprint.file.chars() {
        if c.is_control() {
            file.extend(c.escape_default());
        } else {
            file.push(c);
        }
    }
    let header = format!(
        "# Generated by stateplan from {file} (blueprint {}). Do not edit: change the\n# blueprint and run `stateplan render` again.\n",
        state.blueprint.name
    );
    let mut files = BTreeMap::new();
    let mut folders: Vec<(String, Vec<String>)> = Vec::new();
    // Folder → its place in `folders`: a fleet has a folder per workload.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &rendered.objects {
        let folder = o.workload.as_deref().unwrap_or("cluster");
        let file = format!("{}-{}.yaml", o.kind.to_ascii_lowercase(), o.name);
        files.insert(format!("{folder}/{file}"), Content::Yaml(o.body.yaml()));
        // Objects come in apply order, so each folder's list is too.
        let i = *index.entry(folder).or_insert_with(|| {
            folders.push((folder.to_string(), Vec::new()));
            folders.len() - 1
        });
        folders[i].1.push(file);
    }
    // Kustomize orders by kind itself, but listing in apply order keeps the
    // tree readable and matches `stateplan apply`.
    folders.sort_by_key(|(f, _)| if f == "cluster" { 0 } else { 1 });
    let mut top = Vec::new();
    for (folder, list) in &folders {
        files.insert(
            format!("{folder}/kustomization.yaml"),
            Content::Text(kustomization(&header, list)),
        );
        top.push(folder.clone());
    }
    files.insert(
        "kustomization.yaml".into(),
        Content::Text(kustomization(&header, &top)),
    );
    for a in &rendered.azure {
        files.insert(format!("azure/{}", a.file_name()), Content::Azure(a));
    }
    if !rendered.pending.is_empty() {
        files.insert(
            "azure/pending-values.json".into(),
            Content::Text(pretty_json(&rendered.pending)),
        );
    }
    Tree {
        blueprint: state.blueprint.name.clone(),
        header,
        files,
    }
}

/// The first existing component of `dir/rel` below `dir` that is a
/// symbolic link. `dir` itself may be one: the user named it. Components in
/// `seen` were looked at before and are skipped.
fn symlink_in(
    dir: &Path,
    rel: &str,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Option<PathBuf> {
    let mut p = dir.to_path_buf();
    for c in rel.split('/') {
        p.push(c);
        if seen.contains(&p) {
            continue;
        }
        seen.insert(p.clone());
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Some(p),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn kustomization(header: &str, resources: &[String]) -> String {
    let mut s = format!(
        "{header}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
    );
    for r in resources {
        s.push_str(&format!("- {r}\n"));
    }
    s
}

fn pretty_json(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Writes the tree under `dir`. Refuses, unless `force`, a non-empty folder
/// stateplan did not write, and one holding another blueprint's render
/// (under GitOps with pruning, replacing it deletes that blueprint's
/// StatefulSets).
pub fn write(dir: &Path, tree: &Tree<'_>, force: bool) -> Result<(), WriteError> {
    let files = &tree.files;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| WriteError::Io(p, e)
    };
    let marker = dir.join(MARKER);
    let previous: Vec<String> = match std::fs::read_to_string(&marker) {
        Ok(s) => {
            let mut lines = s.lines().peekable();
            // Markers of earlier versions have no blueprint line.
            if let Some(name) = lines.peek().and_then(|l| l.strip_prefix(MARKER_BLUEPRINT)) {
                if name != tree.blueprint && !force {
                    return Err(WriteError::OtherBlueprint(
                        dir.to_path_buf(),
                        name.to_string(),
                    ));
                }
                lines.next();
            }
            lines.map(str::to_string).collect()
        }
        Err(_) => {
            let non_empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if non_empty && !force {
                return Err(WriteError::NotOurs(dir.to_path_buf()));
            }
            Vec::new()
        }
    };
    // Only plain relative paths we wrote ourselves; never follow `..`.
    let stale: Vec<&String> = previous
        .iter()
        .filter(|f| !files.contains_key(*f))
        .filter(|f| !f.split('/').any(|c| c == ".." || c.is_empty()))
        .collect();
    // Checked before anything changes: a link committed to the repository
    // would otherwise let a render write or delete files outside the tree.
    // Folders hold many files: each is looked at once.
    let mut seen = std::collections::HashSet::new();
    for rel in files
        .keys()
        .chain(stale.iter().copied())
        .map(String::as_str)
        .chain([MARKER])
    {
        if let Some(link) = symlink_in(dir, rel, &mut seen) {
            return Err(WriteError::Symlink(link));
        }
    }
    for old in stale {
        let p = dir.join(old);
        if p.is_file() {
            std::fs::remove_file(&p).map_err(io(&p))?;
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent); // only succeeds when empty
            }
        }
    }
    // Sorted by path: consecutive files mostly share a folder.
    let mut made: Option<PathBuf> = None;
    for (rel, content) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent()
            && made.as_deref() != Some(parent)
        {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            made = Some(parent.to_path_buf());
        }
        tree.write_file(&p, content).map_err(io(&p))?;
    }
    let write_marker = || {
        let mut f = io::BufWriter::new(std::fs::File::create(&marker)?);
        writeln!(f, "{MARKER_BLUEPRINT}{}", tree.blueprint)?;
        for path in files.keys() {
            f.write_all(path.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.flush()
    };
    write_marker().map_err(io(&marker))
}
