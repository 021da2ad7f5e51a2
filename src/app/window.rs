//! A table's window: which rows show when the selection must stay on screen. The app keeps
//! each panel's offset with it (keys, the wheel, clicks); the table draws the same window.

/// The first row to show so that `selected` is visible in `height` rows.
pub fn window_start(selected: usize, offset: usize, height: usize, total: usize) -> usize {
    let height = height.max(1);
    let mut start = offset.min(total.saturating_sub(height));
    if selected < start {
        start = selected;
    } else if selected >= start + height {
        start = selected + 1 - height;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_the_selection() {
        assert_eq!(window_start(0, 0, 10, 100), 0);
        assert_eq!(window_start(15, 0, 10, 100), 6);
        assert_eq!(window_start(3, 6, 10, 100), 3);
        assert_eq!(window_start(99, 95, 10, 100), 90);
    }
}
