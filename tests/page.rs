//! `ringtrail::read::page` and `last`: newest first, keyset pages that cover every
//! row exactly once, in the table's order, however far back the rows lie
//! (the search widens its window from an hour to the whole table), with
//! ties on `ts` broken by `id`, and with filters. A real PostgreSQL.

use std::ops::ControlFlow;

use ringtrail::read::{self, ExportFilter, PageKey};
use ringtrail_testkit as common;

/// Every page of `n` rows, newest first, as row ids.
async fn all_pages(client: &tokio_postgres::Client, filter: &ExportFilter, n: u64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let mut page = Vec::new();
        let mut last = None;
        read::page(client, filter, before, n, |row| {
            page.push(uuid::Uuid::from_bytes(row.id).to_string());
            last = Some(PageKey::of(row));
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert!(page.len() as u64 <= n);
        ids.extend(page.iter().cloned());
        if (page.len() as u64) < n {
            return ids;
        }
        before = last;
    }
}

#[test]
fn pages_cover_every_row_once_newest_first_however_old() {
    let url = common::migrated_database();
    // Rows now, a day back, 300 days back, and ten years back; four rows
    // share each timestamp, so ties are broken by id.
    common::client(&url)
        .batch_execute(
            "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
             SELECT date_trunc('second', now()) - back - (g / 4) * interval '1 s',
                    gen_random_uuid(), 9, CASE WHEN g % 3 = 0 THEN 'app::a' ELSE 'app::b' END,
                    'm ' || g, '{}', false
             FROM unnest(ARRAY[interval '0', interval '1 day', interval '300 days', interval '3650 days']) back,
                  generate_series(0, 22) g;",
        )
        .unwrap();
    let expected = |cond: &str| -> Vec<String> {
        common::client(&url)
            .query(
                &format!(
                    "SELECT id::text FROM ringtrail.logs WHERE {cond} ORDER BY ts DESC, id DESC"
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let all = expected("true");
    assert_eq!(all.len(), 92);
    let only_a_rows = expected("target = 'app::a'");
    let recent_rows = expected("ts >= now() - interval '2 days'");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options: ringtrail::tls::ConnectOptions = url.parse().unwrap();
        let client = read::connect(&options).await.unwrap();
        for n in [1, 7, 23, 100] {
            assert_eq!(
                all_pages(&client, &ExportFilter::default(), n).await,
                all,
                "pages of {n}"
            );
        }
        let only_a = ExportFilter {
            target: Some("app::a".into()),
            ..ExportFilter::default()
        };
        assert_eq!(all_pages(&client, &only_a, 5).await, only_a_rows);
        let recent = ExportFilter {
            since: Some(std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400)),
            ..ExportFilter::default()
        };
        assert_eq!(all_pages(&client, &recent, 4).await, recent_rows);

        // `last` (`tail -n`): the newest n, oldest first, found the same
        // way, whatever n is against the windows.
        for n in [1usize, 5, 23, 24, 47, 92, 500] {
            let mut got = Vec::new();
            read::last(&client, &ExportFilter::default(), n as u64, |row| {
                got.push(uuid::Uuid::from_bytes(row.id).to_string());
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
            let mut want: Vec<String> = all.iter().take(n).cloned().collect();
            want.reverse();
            assert_eq!(got, want, "last {n}");
        }
        let mut got = Vec::new();
        read::last(&client, &only_a, 9, |row| {
            got.push(uuid::Uuid::from_bytes(row.id).to_string());
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        let mut want: Vec<String> = only_a_rows.iter().take(9).cloned().collect();
        want.reverse();
        assert_eq!(got, want, "last 9 of app::a");
    });
}
