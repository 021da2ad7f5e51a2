//! Headless tests of marks: Space marks and moves down, bulk restarts with a batch size, confirmations that name their targets.

use crate::actions::{Action, Panel};
use crate::app::rows::RowKey;
use crate::protocol::{ControlCommand, RestartRequest};
use crate::views::harness::{app, question, row_ids, screen, sent};

#[test]
fn marked_instances_restart_together_with_a_batch_size() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    // api-gateway ×2 and session-cache ×1; none is prod.
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::Mark);
    assert_eq!(app.view(Panel::Instances).marks.len(), 3);
    assert!(screen(&mut app, 120, 14).contains("◆ 3 marked"));
    app.update(Action::Restart);
    app.update(Action::Adjust(1));
    app.update(Action::Adjust(5));
    let shown = screen(&mut app, 120, 16);
    assert!(shown.contains("Restart 3 marked instance(s): ") && shown.contains("◀ 3 ▶"), "{shown}");
    app.update(Action::Input('2'));
    let effects = app.update(Action::Confirmed);
    let commands = sent(&effects);
    let [ControlCommand::Restart(body)] = commands.as_slice() else { panic!("{effects:?}") };
    let body = body.clone();
    assert_eq!(body.batch, Some(2));
    let RestartRequest::Instances(ids) = body.target else { panic!("{:?}", body.target) };
    assert_eq!(ids.len(), 3);
    // Esc clears the marks.
    app.update(Action::Back);
    assert!(app.view(Panel::Instances).marks.is_empty());
}

/// Space marks the row and moves the cursor down, as the help says.
#[test]
fn space_marks_the_row_and_moves_down_as_the_help_says() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let first = app.selected_key(Panel::Instances).expect("a row");
    app.update(Action::Mark);
    assert_eq!(app.selection().index, 1, "the cursor moved down");
    assert!(app.view(Panel::Instances).marks.contains(&first));
    app.update(Action::Up);
    app.update(Action::Mark);
    assert!(!app.view(Panel::Instances).marks.contains(&first), "Space again unmarks");
    app.update(Action::Help);
    let shown = screen(&mut app, 200, 30);
    assert!(shown.contains("mark/unmark, move down"), "{shown}");
}

/// A bulk confirmation names its targets, the first few and then `…`.
#[test]
fn bulk_confirmations_name_their_targets() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    let routes: Vec<(String, String)> = app
        .rows(Panel::Routes)
        .iter()
        .filter_map(|k| match k {
            RowKey::Route(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect();
    assert!(routes.len() >= 5, "{routes:?}");
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    let (a, b) = (&routes[0], &routes[1]);
    assert!(q.starts_with(&format!("Disable 2 routes: {} {}, {} {}?", a.0, a.1, b.0, b.1)), "{q}");
    app.update(Action::Cancelled);
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    let c = &routes[2];
    assert!(
        q.starts_with(&format!("Disable 4 routes: {} {}, {} {}, {} {}, …?", a.0, a.1, b.0, b.1, c.0, c.1)),
        "{q}"
    );
    // Marked instances are named too.
    app.update(Action::Cancelled);
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Mark);
    app.update(Action::Mark);
    let ids: Vec<String> = row_ids(&app, Panel::Instances).into_iter().take(2).collect();
    app.update(Action::Restart);
    let q = question(&app);
    assert!(q.starts_with(&format!("Restart 2 marked instance(s): {}, {}, rolling?", ids[0], ids[1])), "{q}");
}
