//! A plan as text (a terminal), Markdown (a pull-request comment) or JSON (a program).

use std::fmt::Write as _;

use super::report::{Action, Change, Plan, WorkspacePlan};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// For a pull-request comment: a table per workspace, removals first.
    Markdown,
    /// For programs: the shape the README documents.
    Json,
}

/// Renders `plan` in `format`.
#[must_use]
pub fn render(plan: &Plan, format: Format) -> String {
    match format {
        Format::Text => text(plan),
        Format::Markdown => markdown(plan),
        Format::Json => serde_json::to_string_pretty(plan).unwrap_or_default() + "\n",
    }
}

fn sign(action: Action) -> char {
    match action {
        a if a.is_removal() => '-',
        Action::Create | Action::Invite => '+',
        _ => '~',
    }
}

fn summary(plan: &Plan) -> String {
    let (mut add, mut change, mut remove) = (0, 0, 0);
    for c in plan.changes() {
        match sign(c.action) {
            '-' => remove += 1,
            '+' => add += 1,
            _ => change += 1,
        }
    }
    let failed = plan.workspaces.iter().filter(|w| w.error.is_some()).count();
    let notes: usize = plan.workspaces.iter().map(|w| w.notes.len()).sum();
    let counts = if add + change + remove == 0 && failed == 0 && notes == 0 {
        "No changes: Blaxel is as declared.".to_owned()
    } else if add + change + remove == 0 && failed == 0 {
        format!(
            "No changes; {notes} note(s): objects the operator would not act for, or reports on."
        )
    } else {
        format!("Plan: {add} to add, {change} to change, {remove} to remove.")
    };
    if failed == 0 {
        counts
    } else {
        format!("{counts} Incomplete: {failed} workspace(s) not planned.")
    }
}

fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.invalid.is_empty() {
        let _ = writeln!(out, "Invalid manifests (nothing was planned):");
        for i in &plan.invalid {
            let object = i.object.as_deref().unwrap_or("-");
            for e in &i.errors {
                let _ = writeln!(out, "  {} (document {}) {object}: {e}", i.file, i.document);
            }
        }
        return out;
    }
    for w in &plan.workspaces {
        let _ = writeln!(out, "Workspace {}{}", w.workspace, credentials(w));
        if let Some(e) = &w.error {
            let _ = writeln!(out, "  ! not planned: {e}");
        }
        for c in &w.changes {
            let _ = writeln!(
                out,
                "  {} {:<9} {} {} ({})",
                sign(c.action),
                c.action.as_str(),
                c.kind,
                c.object,
                c.target
            );
            for d in &c.details {
                let _ = writeln!(out, "        {d}");
            }
        }
        for n in &w.notes {
            let _ = writeln!(
                out,
                "  ! {} {}: {} ({})",
                n.kind, n.object, n.message, n.reason
            );
        }
        if w.unchanged > 0 {
            let _ = writeln!(out, "  = {} unchanged", w.unchanged);
        }
    }
    let _ = writeln!(out, "{}", summary(plan));
    out
}

fn credentials(w: &WorkspacePlan) -> String {
    w.credentials
        .as_ref()
        .map(|c| format!(" (key from {c})"))
        .unwrap_or_default()
}

/// `s` as an inline code span that nothing in it can close (its fence is longer than any run of
/// backticks inside), on one line, safe in a table cell (`|` escaped). Everything a manifest or
/// Blaxel wrote goes out this way or through [`prose`], so no value can add Markdown or HTML to a
/// pull-request comment.
fn code(s: &str) -> String {
    let flat = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {flat} {fence}")
}

/// `s` as plain text: every character Markdown or HTML would read escaped, on one line.
fn prose(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn row(c: &Change) -> String {
    let details: Vec<String> = c.details.iter().map(|d| code(d)).collect();
    format!(
        "| {} | `{}` | {} | {} | {} | {} |",
        if c.action.is_removal() { "🔴" } else { "" },
        c.action.as_str(),
        c.kind,
        code(&c.object),
        code(&c.target),
        details.join("<br>")
    )
}

fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### blaxel-operator plan\n\n");
    if !plan.invalid.is_empty() {
        let _ = writeln!(out, "**Invalid manifests** (nothing was planned):\n");
        for i in &plan.invalid {
            let object = i.object.as_deref().unwrap_or("-");
            for e in &i.errors {
                let _ = writeln!(
                    out,
                    "- {} (document {}) {}: {}",
                    code(&i.file),
                    i.document,
                    code(object),
                    prose(e)
                );
            }
        }
        return out;
    }
    let _ = writeln!(out, "{}\n", summary(plan));
    for w in &plan.workspaces {
        let _ = writeln!(
            out,
            "#### Workspace {}{}\n",
            code(&w.workspace),
            credentials(w)
        );
        if let Some(e) = &w.error {
            let _ = writeln!(out, "> **Not planned:** {}\n", prose(e));
        }
        if !w.changes.is_empty() {
            out.push_str(
                "| | Action | Kind | Object | Target | Details |\n|---|---|---|---|---|---|\n",
            );
            for c in &w.changes {
                out.push_str(&row(c));
                out.push('\n');
            }
            out.push('\n');
        }
        for n in &w.notes {
            let _ = writeln!(
                out,
                "- ⚠️ {} {}: {} ({})",
                n.kind,
                code(&n.object),
                prose(&n.message),
                code(&n.reason)
            );
        }
        if !w.notes.is_empty() {
            out.push('\n');
        }
        if w.unchanged > 0 {
            let _ = writeln!(out, "{} object(s) unchanged.\n", w.unchanged);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_escape_their_markdown() {
        assert_eq!(code("a"), "` a `");
        assert_eq!(code("x`<b>`y"), "`` x`<b>`y ``");
        assert_eq!(code("a|b\nc"), "` a\\|b c `");
        assert_eq!(
            prose("<details> *x* | `y`"),
            "&lt;details&gt; \\*x\\* \\| \\`y\\`"
        );
    }
}
