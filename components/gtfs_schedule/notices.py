"""Collects validation notices under gtfs-validator's codes and severities.

Every notice is counted; only the first few of each code are kept as examples so
the report stays small however broken a feed is.
"""

from __future__ import annotations

from dataclasses import dataclass

# Severities as MobilityData's gtfs-validator (and the gtfs-guru oracle) assign them.
SEVERITIES: dict[str, str] = {
    "missing_required_file": "ERROR",
    "missing_required_column": "ERROR",
    "missing_required_field": "ERROR",
    "empty_file": "ERROR",
    "invalid_row_length": "ERROR",
    "duplicate_key": "ERROR",
    "foreign_key_violation": "ERROR",
    "invalid_date": "ERROR",
    "invalid_time": "ERROR",
    "invalid_color": "ERROR",
    "invalid_integer": "ERROR",
    "invalid_float": "ERROR",
    "number_out_of_range": "ERROR",
    "missing_calendar_and_calendar_date_files": "ERROR",
    "csv_parsing_failed": "ERROR",
    "stop_time_with_arrival_before_previous_departure_time": "ERROR",
    "new_line_in_value": "ERROR",
    "invalid_timezone": "ERROR",
    "invalid_url": "ERROR",
    "invalid_email": "ERROR",
    "invalid_currency": "ERROR",
    "duplicated_column": "ERROR",
    "empty_column_name": "ERROR",
    "route_both_short_and_long_name_missing": "ERROR",
    "start_and_end_range_out_of_order": "ERROR",
    "start_and_end_range_equal": "ERROR",
    "point_near_origin": "ERROR",
    "point_near_pole": "ERROR",
    "station_with_parent_station": "ERROR",
    "location_without_parent_station": "ERROR",
    "wrong_parent_location_type": "ERROR",
    "stop_without_location": "ERROR",
    "missing_stop_name": "ERROR",
    "inconsistent_agency_timezone": "ERROR",
    "missing_required_agency_id": "ERROR",
    "stop_time_with_only_arrival_or_departure_time": "ERROR",
    "missing_trip_edge": "ERROR",
    "fare_transfer_rule_duration_limit_type_without_duration_limit": "ERROR",
    "fare_transfer_rule_duration_limit_without_type": "ERROR",
    "fare_transfer_rule_invalid_transfer_count": "ERROR",
    "fare_transfer_rule_with_forbidden_transfer_count": "ERROR",
    "fare_transfer_rule_without_transfer_count": "ERROR",
    "timeframe_only_start_or_end_time_specified": "ERROR",
    "timeframe_start_or_end_time_greater_than_twenty_four_hours": "ERROR",
    "transfer_with_invalid_stop_location_type": "ERROR",
    "transfer_with_invalid_trip_and_route": "ERROR",
    "transfer_with_invalid_trip_and_stop": "ERROR",
    "bidirectional_exit_gate": "ERROR",
    "pathway_to_wrong_location_type": "ERROR",
    "pathway_to_platform_with_boarding_areas": "ERROR",
    "location_with_unexpected_stop_time": "ERROR",
    "overlapping_frequency": "ERROR",
    "forbidden_geography_id": "ERROR",
    "forbidden_arrival_or_departure_time": "ERROR",
    "missing_pickup_or_drop_off_window": "ERROR",
    "invalid_pickup_drop_off_window": "ERROR",
    "forbidden_pickup_type": "ERROR",
    "forbidden_drop_off_type": "ERROR",
    "pathway_unreachable_location": "ERROR",
    "decreasing_or_equal_stop_time_distance": "ERROR",
    "decreasing_shape_distance": "ERROR",
    "equal_shape_distance_diff_coordinates": "ERROR",
    "invalid_currency_amount": "ERROR",
    "invalid_character": "ERROR",
    "timeframe_overlap": "ERROR",
    "translation_unexpected_value": "ERROR",
    "translation_foreign_key_violation": "ERROR",
    "stop_access_specified_for_incorrect_location": "ERROR",
    "stop_access_specified_for_stop_with_no_parent_station": "ERROR",
    "forbidden_continuous_pickup_drop_off": "ERROR",
    "stop_time_timepoint_without_times": "ERROR",
    "block_trips_with_overlapping_stop_times": "ERROR",
    "pathway_to_stop_with_access_outside_of_station_pathways": "ERROR",
    "route_networks_specified_in_more_than_one_file": "ERROR",
    "forbidden_shape_dist_traveled": "ERROR",
    "missing_level_id": "ERROR",
    "missing_stop_times_record": "ERROR",
    "trip_distance_exceeds_shape_distance": "ERROR",
    "forbidden_real_time_booking_field_value": "ERROR",
    "forbidden_same_day_booking_field_value": "ERROR",
    "forbidden_prior_day_booking_field_value": "ERROR",
    "missing_prior_notice_duration_min": "ERROR",
    "invalid_prior_notice_duration_min": "ERROR",
    "forbidden_prior_notice_start_day": "ERROR",
    "prior_notice_last_day_after_start_day": "ERROR",
    "missing_prior_notice_last_day": "ERROR",
    "missing_prior_notice_last_time": "ERROR",
    "forbidden_prior_notice_start_time": "ERROR",
    "missing_prior_notice_start_time": "ERROR",
    "invalid_language_code": "ERROR",
    "invalid_input_files_in_subfolder": "ERROR",
    "malformed_json": "ERROR",
    "geo_json_duplicated_element": "ERROR",
    "missing_required_element": "ERROR",
    "unsupported_geo_json_type": "ERROR",
    "unsupported_feature_type": "ERROR",
    "unsupported_geometry_type": "ERROR",
    "invalid_geometry": "ERROR",
    "duplicate_geo_json_key": "ERROR",
    "duplicate_geography_id": "ERROR",
    "overlapping_zone_and_pickup_drop_off_window": "ERROR",
    "fare_product_with_multiple_default_rider_categories": "ERROR",
    "leading_or_trailing_whitespaces": "WARNING",
    "missing_recommended_file": "WARNING",
    "unknown_file": "INFO",
    "unknown_column": "INFO",
    # WARNINGs and INFOs of warnings_*.py.
    "mixed_case_recommended_field": "WARNING",
    "unexpected_enum_value": "WARNING",
    "route_short_name_too_long": "WARNING",
    "route_long_name_contains_short_name": "WARNING",
    "same_name_and_description_for_route": "WARNING",
    "same_name_and_description_for_stop": "WARNING",
    "platform_without_parent_station": "INFO",
    "missing_recommended_field": "WARNING",
    "expired_calendar": "WARNING",
    "trip_coverage_not_active_for_next7_days": "WARNING",
    "feed_expiration_date7_days": "WARNING",
    "feed_expiration_date30_days": "WARNING",
    "missing_feed_info_date": "WARNING",
    "missing_feed_contact_email_and_url": "WARNING",
    "unused_trip": "WARNING",
    "unusable_trip": "WARNING",
    "stop_without_stop_time": "WARNING",
    "unused_shape": "WARNING",
    "duplicate_route_name": "WARNING",
    "more_than_one_entity": "WARNING",
    "pathway_dangling_generic_node": "WARNING",
    "route_color_contrast": "WARNING",
    "same_route_and_agency_url": "WARNING",
    "same_stop_and_agency_url": "WARNING",
    "same_stop_and_route_url": "WARNING",
    "service_has_no_active_day_of_the_week": "WARNING",
    "service_never_active": "WARNING",
    "single_shape_point": "WARNING",
    "transfer_distance_above_2_km": "INFO",
    "transfer_distance_too_large": "WARNING",
    "inconsistent_agency_lang": "WARNING",
    "feed_info_lang_and_agency_lang_mismatch": "WARNING",
    "stop_too_far_from_shape": "WARNING",
    "stop_too_far_from_shape_using_user_distance": "WARNING",
    "stop_has_too_many_matches_for_shape": "WARNING",
    "stops_match_shape_out_of_order": "WARNING",
    "attribution_without_role": "WARNING",
    "duplicate_fare_media": "WARNING",
    "missing_bike_allowance": "WARNING",
    "pathway_loop": "WARNING",
    "translation_unknown_table_name": "WARNING",
    "unused_station": "INFO",
    "transfer_with_suspicious_mid_trip_in_seat": "WARNING",
    "equal_shape_distance_same_coordinates": "WARNING",
    "equal_shape_distance_diff_coordinates_distance_below_threshold": "WARNING",
    "future_calendar": "INFO",
    "future_feed": "INFO",
    "service_extends_far_in_the_future": "INFO",
    "feed_valid_beyond_total_service_window": "INFO",
    "service_window_outside_feed_period": "INFO",
    "big_gap_in_service": "INFO",
    "inconsistent_route_type_for_block_id": "WARNING",
    "non_ascii_or_non_printable_char": "WARNING",
    "missing_timepoint_value": "WARNING",
    "trip_with_shape_dist_traveled_but_no_shape_distances": "INFO",
}

# Notices raised while parsing rows; a file with any of them is not "parsed
# successfully" and gtfs-validator then skips foreign-key checks that involve it.
PARSE_ERRORS: frozenset[str] = frozenset(
    {
        "missing_required_column",
        "missing_required_field",
        "invalid_row_length",
        "invalid_date",
        "invalid_time",
        "invalid_color",
        "invalid_integer",
        "invalid_float",
        "number_out_of_range",
        "csv_parsing_failed",
        "new_line_in_value",
        "invalid_character",
        "invalid_timezone",
        "invalid_url",
        "invalid_email",
        "invalid_currency",
        "invalid_language_code",
        "duplicated_column",
        "empty_column_name",
    }
)

Scalar = str | int | float | None


@dataclass(frozen=True, slots=True)
class Notice:
    """One finding, located by file, CSV row (header is row 1) and field."""

    code: str
    file: str | None = None
    row: int | None = None
    field: str | None = None
    value: Scalar = None
    mode: str | None = None

    def as_dict(self) -> dict[str, Scalar]:
        out: dict[str, Scalar] = {
            "code": self.code,
            "severity": SEVERITIES[self.code],
            "file": self.file,
            "row": self.row,
            "field": self.field,
            "value": self.value,
        }
        if self.mode is not None:
            out["mode"] = self.mode
        return out


class NoticeBook:
    """Counts notices per code and keeps up to ``examples_per_code`` of each."""

    def __init__(self, examples_per_code: int = 50) -> None:
        self._cap = examples_per_code
        self._counts: dict[str, int] = {}
        self._examples: list[Notice] = []
        self._failed_files: set[tuple[str | None, str]] = set()

    def add(self, notice: Notice) -> None:
        n = self._counts.get(notice.code, 0)
        self._counts[notice.code] = n + 1
        if n < self._cap:
            self._examples.append(notice)
        if notice.code in PARSE_ERRORS and notice.file is not None:
            self._failed_files.add((notice.mode, notice.file))

    def add_counted(self, examples: list[Notice], total: int) -> None:
        """As ``add`` for each of ``examples`` and then for ``total - len(examples)`` more
        notices of the same code, kept by count only: ``examples`` must be the first
        ``examples_per_code`` of them (or all)."""
        for notice in examples:
            self.add(notice)
        if total > len(examples):
            code = examples[0].code
            assert code not in PARSE_ERRORS and self._counts[code] >= self._cap
            self._counts[code] += total - len(examples)

    def absorb(self, other: NoticeBook) -> None:
        """Add ``other``'s notices as if each had been added here, in their order.

        ``other`` saw its notices in order and keeps at least as many examples per
        code as this book, so the examples kept here are the ones ``add`` would keep.
        """
        assert other._cap >= self._cap
        shown: dict[str, int] = {}
        for notice in other._examples:
            self.add(notice)
            shown[notice.code] = shown.get(notice.code, 0) + 1
        for code, total in other._counts.items():
            if total > shown.get(code, 0):
                self._counts[code] = self._counts.get(code, 0) + total - shown.get(code, 0)
        self._failed_files |= other._failed_files

    @property
    def examples_per_code(self) -> int:
        return self._cap

    def parsed_ok(self, mode: str | None, file: str) -> bool:
        """Whether ``file`` parsed without errors, as gtfs-validator's table status."""
        return (mode, file) not in self._failed_files

    def count(self, code: str) -> int:
        return self._counts.get(code, 0)

    def total(self, severity: str) -> int:
        return sum(n for code, n in self._counts.items() if SEVERITIES[code] == severity)

    def report(self) -> dict[str, object]:
        return {
            "notices": [n.as_dict() for n in self._examples],
            "counts": {
                code: {"severity": SEVERITIES[code], "count": n}
                for code, n in sorted(self._counts.items())
            },
            "error_count": self.total("ERROR"),
            "warning_count": self.total("WARNING"),
        }
