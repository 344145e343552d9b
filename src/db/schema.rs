//! The portable schema, written by hand to fit both `migrations/sqlite` and `migrations/postgres`:
//! only types both backends map the same way (Text, BigInt, Integer, Bool, Timestamp, Date, Double, Binary).

diesel::table! {
    ledger_head (id) {
        id -> Integer,
        audit_seq -> BigInt,
        audit_hash -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        seq -> Nullable<BigInt>,
        at -> Timestamp,
        actor_sub -> Text,
        actor_username -> Nullable<Text>,
        actor_department -> Nullable<Text>,
        actor_roles -> Text,
        action -> Text,
        entity_type -> Nullable<Text>,
        entity_id -> Nullable<Text>,
        before_data -> Nullable<Text>,
        after_data -> Nullable<Text>,
        request_id -> Nullable<Text>,
        in_feed -> Bool,
        reason -> Nullable<Text>,
        effective_date -> Nullable<Date>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    departments (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        department -> Text,
        roles -> Text,
        password_hash -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        token_epoch -> BigInt,
    }
}

diesel::table! {
    service_accounts (id) {
        id -> Text,
        name -> Text,
        client_id -> Text,
        secret_hash -> Text,
        department -> Text,
        roles -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        token_epoch -> BigInt,
        rate_limit_per_minute -> Nullable<Integer>,
    }
}

diesel::table! {
    request_budgets (account_id) {
        account_id -> Text,
        tat_us -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        subject -> Text,
        family_id -> Text,
        access_jti -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        epoch -> BigInt,
    }
}

diesel::table! {
    revocations (id) {
        id -> Text,
        kind -> Text,
        value -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        username_key -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        state -> Text,
        status_code -> Nullable<Integer>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        claim_token -> Text,
    }
}

diesel::table! {
    water_users (id) {
        id -> Text,
        name -> Text,
        credit_code -> Text,
        legal_representative -> Nullable<Text>,
        region_code -> Text,
        address -> Nullable<Text>,
        industry -> Nullable<Text>,
        contact_phone -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    water_zones (id) {
        id -> Text,
        name -> Text,
        source_type -> Text,
        zone_class -> Text,
        allowable_m3_per_year -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    permits (id) {
        id -> Text,
        permit_no -> Nullable<Text>,
        holder_id -> Text,
        zone_id -> Nullable<Text>,
        source_type -> Text,
        intake_method -> Nullable<Text>,
        purpose -> Text,
        intake_lat -> Nullable<Double>,
        intake_lng -> Nullable<Double>,
        intake_address -> Nullable<Text>,
        annual_volume_m3 -> BigInt,
        daily_max_volume_m3 -> Nullable<BigInt>,
        return_location -> Nullable<Text>,
        return_method -> Nullable<Text>,
        meter_status -> Text,
        valid_from -> Nullable<Date>,
        valid_to -> Nullable<Date>,
        status -> Text,
        submitted_on -> Nullable<Date>,
        approved_on -> Nullable<Date>,
        rejected_on -> Nullable<Date>,
        suspended_on -> Nullable<Date>,
        revoked_on -> Nullable<Date>,
        cancelled_on -> Nullable<Date>,
        renewed_on -> Nullable<Date>,
        last_step_on -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    withdrawals (id) {
        id -> Text,
        permit_id -> Text,
        period -> Text,
        revision -> Integer,
        superseded -> Bool,
        volume_m3 -> BigInt,
        method -> Text,
        reported_by -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        source -> Text,
        over_capacity -> Bool,
    }
}

diesel::table! {
    fee_rates (id) {
        id -> Text,
        source_type -> Text,
        purpose -> Text,
        zone_class -> Nullable<Text>,
        rate -> Text,
        effective_from -> Date,
        effective_to -> Nullable<Date>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    fee_assessments (id) {
        id -> Text,
        kind -> Text,
        payer_id -> Text,
        permit_id -> Nullable<Text>,
        period -> Text,
        months -> Text,
        volume_m3 -> BigInt,
        amount_fen -> BigInt,
        lines -> Text,
        status -> Text,
        notice_no -> Nullable<Text>,
        notified_on -> Nullable<Date>,
        due_date -> Nullable<Date>,
        request_kind -> Nullable<Text>,
        request_until -> Nullable<Date>,
        request_reason -> Nullable<Text>,
        request_on -> Nullable<Date>,
        deferred_until -> Nullable<Date>,
        waived_on -> Nullable<Date>,
        paid_fen -> BigInt,
        late_fee_paid_fen -> BigInt,
        last_paid_on -> Nullable<Date>,
        last_step_on -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        zone_class -> Nullable<Text>,
        late_fee_rate -> Nullable<Text>,
        request_by -> Nullable<Text>,
        planned_user_id -> Nullable<Text>,
        surcharge -> Nullable<Text>,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        assessment_id -> Text,
        amount_fen -> BigInt,
        principal_fen -> BigInt,
        late_fee_fen -> BigInt,
        outstanding_after_fen -> BigInt,
        paid_on -> Date,
        method -> Text,
        receipt_no -> Text,
        note -> Nullable<Text>,
        recorded_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::joinable!(permits -> water_users (holder_id));
diesel::table! {
    planned_users (id) {
        id -> Text,
        water_user_id -> Text,
        category -> Text,
        supply -> Text,
        base_price -> Nullable<Text>,
        active -> Bool,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    plans (id) {
        id -> Text,
        planned_user_id -> Text,
        year -> Integer,
        annual_m3 -> BigInt,
        monthly_m3 -> Text,
        status -> Text,
        issued_on -> Date,
        adjusted_on -> Nullable<Date>,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    planned_usage (id) {
        id -> Text,
        planned_user_id -> Text,
        period -> Text,
        revision -> Integer,
        superseded -> Bool,
        volume_m3 -> BigInt,
        source -> Text,
        reported_by -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    surcharge_tiers (id) {
        id -> Text,
        tiers -> Text,
        category_prices -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    inspections (id) {
        id -> Text,
        kind -> Text,
        target_water_user_id -> Text,
        permit_id -> Nullable<Text>,
        inspected_at -> Timestamp,
        lat -> Nullable<Double>,
        lng -> Nullable<Double>,
        notes -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    inspection_inspectors (inspection_id, account_id) {
        inspection_id -> Text,
        account_id -> Text,
        position -> Integer,
    }
}

diesel::table! {
    rectifications (id) {
        id -> Text,
        inspection_id -> Text,
        position -> Integer,
        #[sql_name = "type"]
        kind -> Text,
        description -> Text,
        rectification_due -> Date,
        status -> Text,
        completed_on -> Nullable<Date>,
        completion_note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        case_no -> Nullable<Text>,
        stage -> Text,
        water_user_id -> Nullable<Text>,
        party_name -> Text,
        party_id_number -> Nullable<Text>,
        party_kind -> Text,
        violation_type -> Text,
        facts -> Text,
        legal_basis -> Nullable<Text>,
        source_inspection_id -> Nullable<Text>,
        findings -> Text,
        clue_on -> Date,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        filed_on -> Nullable<Date>,
        decision_due -> Nullable<Date>,
        notified_on -> Nullable<Date>,
        proposed_fine_fen -> Nullable<BigInt>,
        statement_waived -> Bool,
        outcome -> Nullable<Text>,
        fine_fen -> Nullable<BigInt>,
        decision_no -> Nullable<Text>,
        decision_date -> Nullable<Date>,
        publication_due -> Nullable<Date>,
        published_on -> Nullable<Date>,
        served_on -> Nullable<Date>,
        closed_on -> Nullable<Date>,
        last_step_on -> Nullable<Date>,
        process -> Text,
    }
}

diesel::table! {
    case_officers (case_id, account_id) {
        case_id -> Text,
        account_id -> Text,
        position -> Integer,
    }
}

diesel::table! {
    case_payments (id) {
        id -> Text,
        case_id -> Text,
        amount_fen -> BigInt,
        fine_part_fen -> BigInt,
        late_fee_fen -> BigInt,
        paid_on -> Date,
        receipt_no -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    calendar_turns (id) {
        id -> Integer,
        through -> Nullable<Date>,
    }
}

diesel::table! {
    calendar_years (id) {
        id -> Text,
        year -> Integer,
        source -> Nullable<Text>,
        holidays -> Text,
        workdays -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    evidence (id) {
        id -> Text,
        inspection_id -> Nullable<Text>,
        case_id -> Nullable<Text>,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        uploaded_at -> Timestamp,
        uploaded_by -> Text,
        uploader_id -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::joinable!(permits -> water_zones (zone_id));
diesel::joinable!(withdrawals -> permits (permit_id));
diesel::joinable!(fee_assessments -> water_users (payer_id));
diesel::joinable!(fee_assessments -> permits (permit_id));
diesel::joinable!(fee_assessments -> planned_users (planned_user_id));
diesel::joinable!(payments -> fee_assessments (assessment_id));
diesel::joinable!(planned_users -> water_users (water_user_id));
diesel::joinable!(plans -> planned_users (planned_user_id));
diesel::joinable!(planned_usage -> planned_users (planned_user_id));
diesel::joinable!(inspections -> water_users (target_water_user_id));
diesel::joinable!(inspection_inspectors -> inspections (inspection_id));
diesel::joinable!(rectifications -> inspections (inspection_id));
diesel::joinable!(case_officers -> cases (case_id));
diesel::joinable!(case_payments -> cases (case_id));

diesel::allow_tables_to_appear_in_same_query!(
    ledger_head,
    audit_events,
    counters,
    departments,
    accounts,
    service_accounts,
    request_budgets,
    refresh_tokens,
    revocations,
    login_failures,
    idempotency_keys,
    water_users,
    water_zones,
    permits,
    withdrawals,
    fee_rates,
    fee_assessments,
    payments,
    planned_users,
    plans,
    planned_usage,
    surcharge_tiers,
    inspections,
    inspection_inspectors,
    rectifications,
    cases,
    case_officers,
    case_payments,
    calendar_years,
    evidence,
);
