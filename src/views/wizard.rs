//! The guided deploy's screens: the form (each field's error beside it), the plan
//! preview, the confirmation, the live progress per instance and the end, with the
//! rollback offer. Pure: everything comes from the wizard and the replica.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::FrameContext;
use crate::app::wizard::{Field, Plan, Sent, Step, Upload, Wizard};
use crate::protocol::{Operation, OperationStep, StepState};

const CURSOR: &str = "█";

/// A step and how long it took (ms).
type Timed<'a> = (&'a OperationStep, u64);

pub fn render(app: &FrameContext, w: &Wizard, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let (n, name) = match w.step {
        Step::Form => (1, "form"),
        Step::Plan => (2, "plan"),
        Step::Confirm => (3, "confirm"),
        Step::Progress | Step::ConfirmRollback => (4, "progress"),
    };
    let inner_w = area.width.min(110).saturating_sub(4) as usize;
    let mut lines = match w.step {
        Step::Form => form(app, w, inner_w),
        Step::Plan => plan_lines(app, w, inner_w),
        Step::Confirm => {
            let mut l = plan_lines(app, w, inner_w);
            l.push(Line::from(""));
            l.extend(confirm(app, w, false));
            l
        }
        Step::Progress | Step::ConfirmRollback => {
            let p = progress(app, w, inner_w);
            let error_rows = w.error.as_ref().map_or(0, |e| wrap(&format!("✕ {e}"), inner_w).len());
            let around = p.head.len() + p.tail.len() + error_rows;
            let room = (area.height.saturating_sub(2) as usize).saturating_sub(around);
            let mut lines = p.head;
            lines.extend(scrolled(app, p.steps, room, w.progress_up));
            lines.extend(p.tail);
            lines
        }
    };
    if let Some(err) = &w.error {
        for part in wrap(&format!("✕ {err}"), inner_w) {
            lines.push(Line::from(Span::styled(part, t.bad)));
        }
    }
    let keys = match w.step {
        Step::Form => " Tab complete/next · ↑↓ field · Enter plan · Esc close ",
        Step::Plan => " Enter confirm · Esc back to the form ",
        Step::Confirm | Step::ConfirmRollback if w.is_prod() => " type the name, Enter · Esc back ",
        Step::Confirm | Step::ConfirmRollback => " y yes · n, Esc back ",
        Step::Progress if w.can_roll_back(&app.replica.fleet) => " r roll back · Esc close ",
        Step::Progress if w.finished(&app.replica.fleet).is_some() => " Esc close ",
        Step::Progress => " Esc close (the deploy goes on; d shows it again) ",
    };
    // The body keeps its head and the latest lines when it does not fit.
    let max_body = area.height.saturating_sub(2) as usize;
    if lines.len() > max_body && max_body > 4 {
        let head = 3;
        let tail = max_body - head - 1;
        let cut = lines.len() - tail;
        let mut kept: Vec<Line> = lines.drain(..head).collect();
        kept.push(Line::from(Span::styled(format!("  … {} line(s) above", cut - head), t.muted)));
        kept.extend(lines.drain(cut - head..));
        lines = kept;
    }
    let width = area.width.min(110);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = super::centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .padding(ratatui::widgets::Padding::horizontal(1))
        .title(Span::styled(format!(" Deploy {n}/4: {name} "), t.title))
        .title_bottom(Line::from(Span::styled(keys, t.muted)).right_aligned());
    // What is still too wide says so with `…`, as a table cell does.
    let lines: Vec<Line> = lines.into_iter().map(|l| super::text::ellipsized(l, inner_w)).collect();
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

fn form(app: &FrameContext, w: &Wizard, inner_w: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    let head = match &w.previous {
        Some(p) => format!("redeploy {} (now {}@{} x{}{})", p.name, p.name, p.version, p.instances, prod(w)),
        None if w.value(Field::App).is_empty() => "pick an app or type a new name".into(),
        None => format!("new app {}", w.value(Field::App)),
    };
    lines.push(Line::from(Span::styled(head, t.text)));
    for (i, f) in Field::ALL.iter().enumerate() {
        let focused = w.focus == i;
        let value = w.values[i].clone();
        let marker = if focused { "▶ " } else { "  " };
        let mut spans = vec![
            Span::styled(format!("{marker}{:<10}", f.label()), if focused { t.accent } else { t.muted }),
            Span::styled(value.clone(), t.text),
        ];
        if focused {
            spans.push(Span::styled(CURSOR, t.accent));
        }
        let used = 12 + value.chars().count() + usize::from(focused);
        // Checked before the draw (`FrameContext`): the artifact's check reads the disk.
        match app.wizard_check(i) {
            // The error beside the field when it fits, else on the line below.
            Some(err) if used + 4 + err.chars().count() <= inner_w => {
                spans.push(Span::styled(format!("  ✕ {err}"), t.bad));
                lines.push(Line::from(spans));
            }
            Some(err) => {
                lines.push(Line::from(spans));
                // Wrapped, not cut: the error says how to put the field right.
                let room = inner_w.saturating_sub(14).max(10);
                for (n, part) in wrap(err, room).into_iter().enumerate() {
                    let mark = if n == 0 { "✕ " } else { "  " };
                    lines.push(Line::from(Span::styled(format!("{:12}{mark}{part}", ""), t.bad)));
                }
            }
            None => {
                if focused || value.is_empty() {
                    let room = inner_w.saturating_sub(used + 3);
                    if room > 8 {
                        spans.push(Span::styled(format!("   {}", clip(f.hint(), room)), t.muted));
                    }
                }
                lines.push(Line::from(spans));
            }
        }
    }
    lines.push(Line::from(Span::styled(
        clip(
            "artifact: a file here is uploaded to the repository (sha256 checked) before the deploy is sent",
            inner_w,
        ),
        t.muted,
    )));
    lines
}

fn prod(w: &Wizard) -> &'static str {
    if w.is_prod() { ", prod" } else { "" }
}

fn plan_lines(app: &FrameContext, w: &Wizard, inner_w: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    let Some(plan) = &w.plan else { return lines };
    let what = format!(
        "{}@{} x{}, image {}, {} cores / {} each",
        w.value(Field::App),
        w.value(Field::Version),
        w.value(Field::Instances),
        w.value(Field::Image),
        w.value(Field::Cpu),
        w.value(Field::Memory),
    );
    lines.push(Line::from(vec![Span::styled("plan  ", t.muted), Span::styled(what, t.text)]));
    lines.push(Line::from(Span::styled(format!("      {}", plan.note), t.muted)));
    match &plan.no_fit {
        Some(why) => {
            for part in wrap(&format!("✕ nothing fits: {why}"), inner_w) {
                lines.push(Line::from(Span::styled(part, t.bad)));
            }
        }
        None => {
            let list: Vec<String> =
                plan.placements.iter().enumerate().map(|(i, h)| format!("#{} → {h}", i + 1)).collect();
            let text = if list.is_empty() { "no new instance needed".to_string() } else { list.join("  ") };
            lines.push(Line::from(vec![Span::styled("✓ fits  ", t.ok), Span::styled(text, t.text)]));
        }
    }
    let when = if plan.no_fit.is_some() { "now" } else { "after the deploy" };
    lines.push(Line::from(Span::styled(format!("CPU and memory left {when}:"), t.muted)));
    lines.extend(hosts(app, plan));
    lines
}

fn hosts(app: &FrameContext, plan: &Plan) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<12} {:<6} {:>4} {:>10} {:>12}  {}", "HOST", "AZ", "NEW", "CPU LEFT", "MEM LEFT", ""),
        t.header,
    ))];
    for h in &plan.hosts {
        let style = if !h.eligible {
            t.muted
        } else if h.cpu_left < 0.0 {
            t.bad
        } else {
            t.text
        };
        let note = if h.eligible { "" } else { "ruled out: state/AZ/tags" };
        let new = if h.new > 0 { format!("+{}", h.new) } else { "·".into() };
        lines.push(Line::from(Span::styled(
            format!(
                "{:<12} {:<6} {:>4} {:>10.2} {:>9} MB  {note}",
                clip(&h.host, 12),
                clip(&h.az, 6),
                new,
                h.cpu_left,
                h.memory_left_mb
            ),
            style,
        )));
    }
    lines
}

fn confirm(app: &FrameContext, w: &Wizard, rollback: bool) -> Vec<Line<'static>> {
    let t = &app.theme;
    let name = w.value(Field::App).to_string();
    let question = match (&w.previous, rollback) {
        (Some(p), true) => format!(
            "Roll {name} back to {}@{} x{} (image {}{})?",
            p.name,
            p.version,
            p.instances,
            p.image,
            p.run.artifact.as_ref().map(|a| format!(", artifact {}", a.name)).unwrap_or_default()
        ),
        (Some(p), false) => format!(
            "Deploy {name}@{} x{} (now {}@{} x{})?",
            w.value(Field::Version),
            w.value(Field::Instances),
            p.name,
            p.version,
            p.instances
        ),
        (None, _) => {
            format!("Deploy new app {name}@{} x{}?", w.value(Field::Version), w.value(Field::Instances))
        }
    };
    let mut lines = vec![Line::from(Span::styled(question, t.text))];
    if w.is_prod() {
        lines.push(Line::from(vec![
            Span::styled("⚠ prod: type ", t.warn),
            Span::styled(name, t.title),
            Span::styled(" and Enter to confirm", t.warn),
        ]));
        lines.push(Line::from(vec![
            Span::styled("> ", t.accent),
            Span::styled(w.input.clone(), t.text),
            Span::styled(CURSOR, t.accent),
        ]));
    } else {
        lines.push(Line::from(vec![
            Span::styled("[y]", t.warn),
            Span::styled(" yes    ", t.text),
            Span::styled("[N]", t.accent),
            Span::styled(" no (n, Esc)", t.text),
        ]));
    }
    lines
}

/// The progress in three parts: what stays on top, the steps (which scroll), and the end.
#[derive(Default)]
struct Progress {
    head: Vec<Line<'static>>,
    steps: Vec<Line<'static>>,
    tail: Vec<Line<'static>>,
}

/// The steps in `room` lines: all when they fit, else a window ending `up` lines above
/// the latest, with a line for what is hidden above and below (and the keys for it).
fn scrolled(app: &FrameContext, steps: Vec<Line<'static>>, room: usize, up: usize) -> Vec<Line<'static>> {
    if steps.len() <= room || room < 3 {
        return steps;
    }
    let t = &app.theme;
    let len = steps.len();
    // Following, the window is the latest lines under one saying what is above; each
    // line scrolled up moves it up by one, a line saying what is below taking the last.
    let start = (len - (room - 1)).saturating_sub(up);
    let window = room - usize::from(start > 0) - usize::from(up > 0);
    let below = len - (start + window);
    let mut out = Vec::with_capacity(room);
    if start > 0 {
        out.push(Line::from(Span::styled(format!("  ↑ {start} line(s) above (↑/k, g: the first)"), t.muted)));
    }
    out.extend(steps.into_iter().skip(start).take(window));
    if below > 0 {
        out.push(Line::from(Span::styled(
            format!("  ↓ {below} newer line(s) (↓/j, G: the latest)"),
            t.muted,
        )));
    }
    out
}

fn progress(app: &FrameContext, w: &Wizard, inner_w: usize) -> Progress {
    let t = &app.theme;
    let fleet = &app.replica.fleet;
    let mut p = Progress::default();
    let Some(sent) = w.sent.last() else { return p };
    let what = if sent.rollback { format!("rollback: {}", sent.what) } else { sent.what.clone() };
    let op = w.operation(fleet);
    let uploading = sent.upload.as_ref().is_some_and(|u| u.result.is_none());
    let head = match (&sent.operation, &sent.refused) {
        (_, Some(_)) => format!("{what}: refused"),
        (Some(id), _) => format!("{what} · operation {id}"),
        (None, None) if uploading => format!("{what} · sent once the artifact is uploaded"),
        (None, None) => format!("{what} · waiting for the controller's answer"),
    };
    p.head.push(Line::from(Span::styled(head, t.text)));
    if let Some(up) = &sent.upload {
        p.head.push(Line::from(Span::styled("this machine → repository", t.accent)));
        p.head.push(upload_line(app, up, inner_w));
    }
    if let Some(op) = op {
        let steps = crate::app::facts::operation_steps(&app.replica, op);
        if let (None, Some(counts)) = (&steps, op.compacted) {
            p.head.push(Line::from(Span::styled(crate::app::facts::compacted_note(counts), t.muted)));
        }
        p.steps = step_lines(app, op, steps.iter().flat_map(|s| s.iter()));
    }
    p.tail = tail_lines(app, w, sent, op, inner_w);
    p
}

/// The upload's line: under way, done (or already there), or failed.
fn upload_line(app: &FrameContext, up: &Upload, inner_w: usize) -> Line<'static> {
    let t = &app.theme;
    let ms = up.finished.unwrap_or(app.now).saturating_sub(up.started);
    let (mark, style, detail) = match &up.result {
        None => {
            // The file's name: the whole path is in the form, and would not fit here.
            let name = up.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            ("…", t.warn, format!("{name} ({}) to the repository", super::text::size(up.size)))
        }
        Some(Ok(u)) => {
            let a = &u.artifact;
            let how = if u.already_there { "already there" } else { "uploaded" };
            let detail =
                format!("{how}: {} ({}, sha256 {})", a.name, super::text::size(a.size), clip(&a.sha256, 13));
            ("✓", t.ok, detail)
        }
        Some(Err(e)) => ("✕", t.bad, e.clone()),
    };
    Line::from(vec![
        Span::styled(format!("  {mark} {:<36}", "UPLOAD"), style),
        Span::styled(format!("{:>8}  ", duration(ms)), t.muted),
        Span::styled(clip(&detail, inner_w.saturating_sub(50).max(20)), t.text),
    ])
}

/// The operation's steps: the repository's first (no instance), then each instance's in
/// order, each with how long it took. A step recorded when it ended (start = end) took the
/// time since the step before.
fn step_lines<'s>(
    app: &FrameContext,
    op: &Operation,
    steps: impl Iterator<Item = &'s OperationStep>,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut groups: Vec<(Option<String>, Vec<Timed>)> = Vec::new();
    let mut prev_end = op.started_at;
    for s in steps {
        let end = s.finished_at.unwrap_or(app.now);
        let from = if s.started_at < end { s.started_at } else { prev_end.min(end) };
        prev_end = prev_end.max(end);
        let timed = (s, end.saturating_sub(from));
        match groups.iter_mut().find(|(k, _)| *k == s.instance) {
            Some((_, v)) => v.push(timed),
            None => groups.push((s.instance.clone(), vec![timed])),
        }
    }
    let mut lines = Vec::new();
    for (inst, steps) in groups {
        let label = inst.map(|i| format!("instance {i}")).unwrap_or_else(|| "artifact".into());
        lines.push(Line::from(Span::styled(label, t.accent)));
        for (s, ms) in steps {
            let (mark, style) = match s.state {
                StepState::Done => ("✓", t.ok),
                StepState::Running => ("…", t.warn),
                StepState::Failed => ("✕", t.bad),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {mark} {:<36}", s.name.as_str()), style),
                Span::styled(format!("{:>8}  ", duration(ms)), t.muted),
                Span::styled(clip(&s.detail, 60), t.text),
            ]));
        }
    }
    lines
}

/// How it ended (or how long it has run), and the rollback it offers.
fn tail_lines(
    app: &FrameContext,
    w: &Wizard,
    sent: &Sent,
    op: Option<&Operation>,
    inner_w: usize,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    let fleet = &app.replica.fleet;
    let mut lines = vec![Line::from("")];
    match w.finished(fleet) {
        None => {
            let ms = app.now.saturating_sub(op.map(|o| o.started_at).unwrap_or(sent.sent_at));
            lines.push(Line::from(Span::styled(format!("… running for {}", duration(ms)), t.warn)));
        }
        Some(Ok(target)) => {
            let ms = op.and_then(|o| o.finished_at.map(|f| f.saturating_sub(o.started_at))).unwrap_or(0);
            lines.push(Line::from(Span::styled(format!("✓ succeeded: {target} in {}", duration(ms)), t.ok)));
        }
        Some(Err(reason)) => {
            for part in wrap(&format!("✕ failed: {reason}"), inner_w) {
                lines.push(Line::from(Span::styled(part, t.bad)));
            }
        }
    }
    if w.step == Step::ConfirmRollback {
        lines.push(Line::from(""));
        lines.extend(confirm(app, w, true));
    } else if w.can_roll_back(fleet)
        && let Some(p) = &w.previous
    {
        lines.push(Line::from(vec![
            Span::styled("r", t.warn),
            Span::styled(
                format!(" rolls back to {}@{} x{} (asks first) · Esc closes", p.name, p.version, p.instances),
                t.text,
            ),
        ]));
    }
    lines
}

fn duration(ms: u64) -> String {
    if ms < 1000 { format!("{ms}ms") } else { format!("{:.1}s", ms as f64 / 1000.0) }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Words into lines of at most `width` characters; a longer word is cut.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let Some(last) = lines.last_mut() else { break };
        let len = last.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(clip(word, width));
        } else {
            if len > 0 {
                last.push(' ');
            }
            last.push_str(&clip(word, width - len.min(width)));
        }
    }
    lines
}

#[cfg(test)]
#[path = "wizard_tests.rs"]
mod tests;
