//! What to enrol: a folder per person (the folder's name is the person's name), or a CSV
//! manifest `name,file[,gender,date_of_birth,notes]` for archives laid out differently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// File name extensions taken as images in a person's folder (others are ignored).
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

/// One person to enrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonInput {
    pub name: String,
    /// The image files, in a stable order.
    pub files: Vec<PathBuf>,
    /// How the files are named in the report (relative to the folder or the manifest).
    pub labels: Vec<String>,
    pub gender: Option<String>,
    pub date_of_birth: Option<String>,
    pub notes: Option<String>,
}

/// Every sub-folder of `dir` (hidden ones excepted), by name.
pub fn from_folders(dir: &Path) -> anyhow::Result<Vec<PersonInput>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading the folder {}", dir.display()))?;
    let mut persons = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading the folder {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let (files, labels) = images_in(&entry.path())?;
        persons.push(PersonInput {
            name,
            files,
            labels,
            gender: None,
            date_of_birth: None,
            notes: None,
        });
    }
    persons.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(persons)
}

fn images_in(folder: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("reading the folder {}", folder.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading the folder {}", folder.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !name.starts_with('.') && is_image && path.is_file() {
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(n, p)| (p, n)).unzip())
}

/// The persons of a manifest, in the order of their first row; the files of one name are
/// gathered, and gender, birth date and notes come from its first row that has them. Paths
/// are relative to the manifest's folder. A first row `name,file,…` is a header.
pub fn from_manifest(path: &Path) -> anyhow::Result<Vec<PersonInput>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rows = parse_csv(&text).with_context(|| format!("in {}", path.display()))?;
    let mut persons: Vec<PersonInput> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (n, row) in rows.iter().enumerate() {
        let line = n + 1;
        if n == 0 && row.first().map(String::as_str) == Some("name") {
            continue;
        }
        if row.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if row.len() < 2 || row.len() > 5 {
            bail!(
                "{} row {line}: expected name,file[,gender,date_of_birth,notes], found {} fields",
                path.display(),
                row.len()
            );
        }
        let name = row[0].trim().to_owned();
        let file = row[1].trim().to_owned();
        if name.is_empty() || file.is_empty() {
            bail!(
                "{} row {line}: the name and the file are required",
                path.display()
            );
        }
        let field = |i: usize| {
            row.get(i)
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
        };
        let at = *index.entry(name.clone()).or_insert_with(|| {
            persons.push(PersonInput {
                name: name.clone(),
                files: Vec::new(),
                labels: Vec::new(),
                gender: None,
                date_of_birth: None,
                notes: None,
            });
            persons.len() - 1
        });
        let p = &mut persons[at];
        p.files.push(base.join(&file));
        p.labels.push(file);
        p.gender = p.gender.take().or_else(|| field(2));
        p.date_of_birth = p.date_of_birth.take().or_else(|| field(3));
        p.notes = p.notes.take().or_else(|| field(4));
    }
    Ok(persons)
}

/// RFC 4180 rows: fields separated by commas, optionally in double quotes (`""` is a quote
/// inside), rows ended by LF or CRLF.
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        bail!("line {line}: a quoted field is not closed");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_quotes_and_line_ends() {
        let rows = parse_csv("a,b\r\n\"c, d\",\"say \"\"hi\"\"\"\ne,\n").expect("parses");
        assert_eq!(
            rows,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["c, d".to_owned(), "say \"hi\"".to_owned()],
                vec!["e".to_owned(), String::new()],
            ]
        );
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn a_manifest_gathers_the_files_of_one_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "name,file,gender,date_of_birth,notes\nAda,a1.jpg,F,1815-12-10,\nBob,b.jpg\nAda,a2.jpg,,,x\n",
        )
        .expect("write");
        let persons = from_manifest(&path).expect("parses");
        assert_eq!(persons.len(), 2);
        assert_eq!(persons[0].name, "Ada");
        assert_eq!(persons[0].labels, vec!["a1.jpg", "a2.jpg"]);
        assert_eq!(persons[0].files[1], dir.path().join("a2.jpg"));
        assert_eq!(persons[0].gender.as_deref(), Some("F"));
        assert_eq!(persons[0].date_of_birth.as_deref(), Some("1815-12-10"));
        assert_eq!(persons[0].notes.as_deref(), Some("x"));
        assert_eq!(persons[1].gender, None);
        std::fs::write(&path, "Ada\n").expect("write");
        assert!(from_manifest(&path).is_err());
    }
}
