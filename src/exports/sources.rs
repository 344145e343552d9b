//! The exportable collections: for each, a batch of rows in id order and their views as `GET` shows them, built
//! with the same functions the feature's own list uses (so an export never disagrees with a page of the list).

use diesel::prelude::*;

use super::{Ctx, Source, Window};
use crate::accounts::{Account, AccountRow, Department, ServiceAccount, ServiceAccountRow};
use crate::cases::documents::{publication_of, Publication};
use crate::cases::{Case, CaseRow};
use crate::db::schema;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::evidence::{Evidence, EvidenceRow};
use crate::fees::rates::{FeeRate, FeeRateRow};
use crate::fees::view::{payment_views, Context, FeeAssessment, Payment};
use crate::fees::{AssessmentRow, PaymentRow};
use crate::inspections::{Inspection, InspectionRow, Rectification, RectificationRow};
use crate::permits::{Permit, PermitRow, Refs};
use crate::planned_use::{water_user_names, Plan, PlanRow, PlannedUser, PlannedUserRow, Usage, UsageRow};
use crate::water_users::WaterUser;
use crate::water_zones::{Zone, ZoneRow};
use crate::withdrawals::{Withdrawal, WithdrawalRow};

/// The rows of `$table` after the window's key, changed since its instant, in id order; `$extra` narrows them.
macro_rules! keyset {
    ($conn:expr, $w:expr, $table:ident, $row:ty $(, $extra:expr)?) => {{
        use schema::$table as t;
        let mut q = t::table.select(<$row>::as_select()).order(t::id.asc()).limit($w.limit).into_boxed();
        if let Some(after) = &$w.after {
            q = q.filter(t::id.gt(after.clone()));
        }
        if let Some(since) = $w.since {
            q = q.filter(t::updated_at.ge(since));
        }
        $(q = q.filter($extra);)?
        Ok(q.load::<$row>($conn)?)
    }};
}

/// Declares a [`Source`] over `$table`: rows `$row`, views `$view` made by `$views(conn, rows, ctx)`.
macro_rules! source {
    ($name:ident, $table:ident, $row:ty => $view:ty, $views:expr $(, where $extra:expr)?) => {
        pub struct $name;

        impl Source for $name {
            type Row = $row;
            type View = $view;

            fn rows(conn: &mut DbConn, w: &Window) -> ApiResult<Vec<$row>> {
                keyset!(conn, w, $table, $row $(, $extra)?)
            }

            fn key(row: &$row) -> String {
                row.id.clone()
            }

            fn views(conn: &mut DbConn, rows: Vec<$row>, ctx: &Ctx) -> ApiResult<Vec<$view>> {
                let f: fn(&mut DbConn, Vec<$row>, &Ctx) -> ApiResult<Vec<$view>> = $views;
                f(conn, rows, ctx)
            }
        }
    };
}

source!(WaterUsers, water_users, WaterUser => WaterUser, |_, rows, _| Ok(rows));

source!(Zones, water_zones, ZoneRow => Zone, |conn, rows, ctx| {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let totals = crate::water_zones::approved_totals(conn, &ids, ctx.now.today)?;
    Ok(rows.iter().map(|r| Zone::new(r, totals.get(&r.id).copied().unwrap_or(0))).collect())
});

source!(Permits, permits, PermitRow => Permit, |conn, rows, ctx| {
    let refs = Refs::load(conn, rows.iter())?;
    Ok(rows.iter().map(|r| Permit::from_row(r, ctx.now.today, &refs)).collect())
});

// Current revisions only, as the lists show them (corrections replace a month's figure; the feed has each one).
source!(Withdrawals, withdrawals, WithdrawalRow => Withdrawal, |conn, rows, _| {
    let numbers = crate::withdrawals::permit_numbers(conn, rows.iter())?;
    Ok(rows.iter().map(|r| Withdrawal::new(r, numbers.get(&r.permit_id).cloned().flatten())).collect())
}, where t::superseded.eq(false));

source!(FeeRates, fee_rates, FeeRateRow => FeeRate, |_, rows, _| Ok(rows.iter().map(FeeRate::from).collect()));

source!(FeeAssessments, fee_assessments, AssessmentRow => FeeAssessment, |conn, rows, ctx| {
    // As `GET` shows each one today, differences to re-assess included.
    let views = Context::load(conn, &rows, ctx.fees, ctx.now.today, true)?;
    Ok(rows.iter().map(|r| views.view(r)).collect())
});

source!(Payments, payments, PaymentRow => Payment, |conn, rows, _| Ok(payment_views(conn, rows)?));

source!(PlannedUsers, planned_users, PlannedUserRow => PlannedUser, |conn, rows, _| {
    let names = water_user_names(conn, rows.iter().map(|r| r.water_user_id.clone()).collect())?;
    Ok(rows.iter().map(|r| PlannedUser::new(r, &names)).collect())
});

source!(Plans, plans, PlanRow => Plan, |_, rows, _| Ok(rows.iter().map(Plan::new).collect()));

source!(Usages, planned_usage, UsageRow => Usage, |_, rows, _| Ok(rows.iter().map(Usage::new).collect()),
    where t::superseded.eq(false));

source!(Inspections, inspections, InspectionRow => Inspection, |conn, rows, ctx| {
    Ok(crate::inspections::views(conn, rows, ctx.now.today)?)
});

source!(Rectifications, rectifications, RectificationRow => Rectification, |conn, rows, ctx| {
    Ok(crate::inspections::rectification_views(conn, rows, ctx.now.today)?)
});

source!(EvidenceItems, evidence, EvidenceRow => Evidence, |_, rows, _| Ok(rows.iter().map(Evidence::new).collect()));

source!(Cases, cases, CaseRow => Case, |conn, rows, ctx| Ok(crate::cases::views(conn, rows, ctx.now.today)?));

// The public records of decided penalties (双公示), one per case decided with a penalty.
source!(Publications, cases, CaseRow => Publication, |conn, rows, ctx| {
    rows.iter().map(|r| publication_of(conn, r, &ctx.authority)).collect()
}, where t::outcome.eq("penalty").and(t::decision_date.is_not_null()));

source!(Departments, departments, Department => Department, |_, rows, _| Ok(rows));

source!(Accounts, accounts, AccountRow => Account, |_, rows, _| Ok(rows.iter().map(Account::from).collect()));

source!(ServiceAccounts, service_accounts, ServiceAccountRow => ServiceAccount, |_, rows, _| {
    Ok(rows.iter().map(ServiceAccount::from).collect())
});
