//! Headless tests of the guided deploy wizard, driven through the whole App on the
//! fixture: opened from the palette, parked and brought back.

use crate::actions::Action;
use crate::backend::Inbound;
use crate::views::harness::{app, sent, type_text, wizard};

#[test]
fn palette_deploy_opens_the_wizard_prefilled_and_esc_parks_a_running_deploy() {
    use crate::app::wizard::{Field, Step};
    let mut app = app();
    app.update(Action::Palette);
    type_text(&mut app, "deploy shop-web 2.0.0 x3");
    assert!(sent(&app.update(Action::Submit)).is_empty(), "the wizard confirms, not the palette");
    let w = wizard(&app);
    assert_eq!(w.step, Step::Form);
    assert_eq!(
        (w.value(Field::App), w.value(Field::Version), w.value(Field::Instances)),
        ("shop-web", "2.0.0", "3")
    );
    // The image and the rest come from the app's spec.
    assert_eq!(w.value(Field::Image), app.replica.fleet.apps["shop-web"].image);

    app.update(Action::Submit); // the plan
    app.update(Action::Submit); // the confirmation
    assert_eq!(wizard(&app).step, Step::Confirm);
    // shop-web is a prod app: its name is typed to confirm.
    assert!(wizard(&app).is_prod());
    type_text(&mut app, "shop-web");
    let cmds = sent(&app.update(Action::Submit));
    assert_eq!(cmds.len(), 1);
    let what = cmds[0].describe();

    // Esc while the deploy runs parks the wizard; its answer still reaches it, and `d`
    // brings it back with the operation it follows.
    app.update(Action::Back);
    assert!(app.overlay().is_none());
    assert!(app.status.as_ref().is_some_and(|s| s.text.contains("d shows its progress")));
    let accepted = crate::protocol::Accepted { operation_id: Some("op-77".into()), rev: 1 };
    app.apply(Inbound::CommandDone { what, result: Ok(accepted) });
    app.update(Action::Deploy);
    let w = wizard(&app);
    assert_eq!(w.step, Step::Progress);
    assert_eq!(w.sent.last().and_then(|s| s.operation.as_deref()), Some("op-77"));
    // Closed again, it parks again while running; a new name is a first deploy.
    app.update(Action::Back);
    assert!(app.parked_wizard.is_some());

    let mut app = self::app();
    app.update(Action::Palette);
    type_text(&mut app, "deploy brand-new 0.1.0");
    app.update(Action::Submit);
    let w = wizard(&app);
    assert_eq!((w.value(Field::App), w.value(Field::Version)), ("brand-new", "0.1.0"));
    assert!(w.previous.is_none());
}
