/* Unit tests of the Connect Four rules of the Game State service (handlers/game_state/
 * connect4.c, a pure module: included here, so the suite links only libtablium). */
#include "../../handlers/game_state/connect4.c"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The board after `cols` played from empty (every move legal, asserted), as text. */
static c4_board played(const int *cols, size_t n, c4_move *last, int *count)
{
    c4_board b = C4_BOARD_INIT;
    int rc = c4_play(&b, cols, n, last);
    ck_assert_msg(rc >= 0, "c4_play: %d", rc);
    if (count)
        *count = rc;
    return b;
}

static void assert_board(const c4_board *b, const char *want)
{
    char got[C4_CELLS + 1];
    c4_format(b, got);
    ck_assert_str_eq(got, want);
}

static void assert_line(const c4_pos line[4], const int want[4][2])
{
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(line[i].row == want[i][0] && line[i].col == want[i][1],
                      "cell %d: (%d,%d), want (%d,%d)", i, line[i].row, line[i].col, want[i][0],
                      want[i][1]);
    }
}

START_TEST(x_moves_first_then_turns_alternate)
{
    ck_assert_int_eq(c4_to_move(0), C4_X);
    ck_assert_int_eq(c4_to_move(1), C4_O);
    ck_assert_int_eq(c4_to_move(2), C4_X);
    ck_assert_int_eq(c4_to_move(41), C4_O);
}
END_TEST

START_TEST(a_disc_lands_on_the_lowest_empty_cell_and_a_column_holds_six)
{
    c4_board b = C4_BOARD_INIT;
    c4_move mv;
    for (int i = 0; i < C4_ROWS; i++) {
        ck_assert_int_eq(c4_landing_row(&b, 3), C4_ROWS - 1 - i);
        ck_assert_int_eq(c4_drop(&b, 3, c4_to_move(i), &mv), 0);
        ck_assert_int_eq(mv.at.row, C4_ROWS - 1 - i);
        ck_assert_int_eq(mv.at.col, 3);
        ck_assert_int_eq(mv.outcome, C4_ONGOING);
    }
    ck_assert_int_eq(c4_landing_row(&b, 3), C4_EFULL);
    c4_board before = b;
    ck_assert_int_eq(c4_drop(&b, 3, C4_X, &mv), C4_EFULL);
    ck_assert_mem_eq(&b, &before, sizeof b); /* unchanged */
    assert_board(&b, "...O......X......O......X......O......X...");
}
END_TEST

START_TEST(columns_outside_0_to_6_and_empty_marks_are_refused)
{
    c4_board b = C4_BOARD_INIT, empty = C4_BOARD_INIT;
    ck_assert_int_eq(c4_landing_row(&b, -1), C4_ECOLUMN);
    ck_assert_int_eq(c4_landing_row(&b, 7), C4_ECOLUMN);
    ck_assert_int_eq(c4_drop(&b, 7, C4_X, NULL), C4_ECOLUMN);
    ck_assert_int_eq(c4_drop(&b, -1, C4_O, NULL), C4_ECOLUMN);
    ck_assert_int_eq(c4_drop(&b, 0, C4_EMPTY, NULL), C4_EMARK);
    ck_assert_int_eq(c4_drop(&b, 0, (c4_mark)3, NULL), C4_EMARK);
    ck_assert_mem_eq(&b, &empty, sizeof b);
    ck_assert_int_eq(c4_drop(&b, 0, C4_X, NULL), 0); /* 0 and 6 are the edges, both legal */
    ck_assert_int_eq(c4_drop(&b, 6, C4_O, NULL), 0);
}
END_TEST

START_TEST(four_vertical_wins)
{
    static const int seq[] = {0, 1, 0, 1, 0, 1, 0};
    c4_move mv;
    int n;
    c4_board b = played(seq, N(seq), &mv, &n);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(mv.outcome, C4_WON);
    ck_assert_int_eq(b.cell[mv.at.row][mv.at.col], C4_X);
    static const int want[4][2] = {{2, 0}, {3, 0}, {4, 0}, {5, 0}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(four_horizontal_wins)
{
    static const int seq[] = {0, 0, 1, 1, 2, 2, 3};
    c4_move mv;
    c4_board b = played(seq, N(seq), &mv, NULL);
    ck_assert_int_eq(mv.outcome, C4_WON);
    static const int want[4][2] = {{5, 0}, {5, 1}, {5, 2}, {5, 3}};
    assert_line(mv.line, want);
    assert_board(&b, "............................OOO....XXXX...");
}
END_TEST

START_TEST(four_rising_diagonal_wins)
{
    static const int seq[] = {0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3};
    c4_move mv;
    played(seq, N(seq), &mv, NULL);
    ck_assert_int_eq(mv.outcome, C4_WON);
    static const int want[4][2] = {{5, 0}, {4, 1}, {3, 2}, {2, 3}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(four_falling_diagonal_wins)
{
    static const int seq[] = {6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3};
    c4_move mv;
    played(seq, N(seq), &mv, NULL);
    ck_assert_int_eq(mv.outcome, C4_WON);
    static const int want[4][2] = {{2, 3}, {3, 4}, {4, 5}, {5, 6}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(the_second_player_can_win)
{
    static const int seq[] = {0, 1, 0, 2, 0, 3, 6, 4};
    c4_move mv;
    c4_board b = played(seq, N(seq), &mv, NULL);
    ck_assert_int_eq(mv.outcome, C4_WON);
    ck_assert_int_eq(b.cell[mv.at.row][mv.at.col], C4_O);
    static const int want[4][2] = {{5, 1}, {5, 2}, {5, 3}, {5, 4}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(five_in_a_row_reports_the_first_four_with_the_last_disc)
{
    /* X at 0, 1, 3, 4 of the bottom row (O on top of each), then X at 2: a run of five */
    static const int seq[] = {0, 0, 1, 1, 3, 3, 4, 4, 2};
    c4_move mv;
    int n;
    played(seq, N(seq), &mv, &n);
    ck_assert_int_eq(n, 9);
    ck_assert_int_eq(mv.outcome, C4_WON);
    static const int want[4][2] = {{5, 0}, {5, 1}, {5, 2}, {5, 3}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(three_in_a_row_or_a_broken_four_does_not_win)
{
    /* X: 0 1 2 and 4 on the bottom row (3 is O's), O stacked on 0 1 2: nobody has four */
    static const int seq[] = {0, 3, 1, 0, 2, 1, 4, 2};
    c4_move mv;
    int n;
    c4_board b = played(seq, N(seq), &mv, &n);
    ck_assert_int_eq(n, 8);
    ck_assert_int_eq(mv.outcome, C4_ONGOING);
    ck_assert(!c4_find_line(&b, NULL));
    ck_assert(!c4_line_through(&b, (c4_pos){5, 2}, NULL));
    ck_assert(!c4_line_through(&b, (c4_pos){0, 0}, NULL)); /* empty */
    ck_assert(!c4_line_through(&b, (c4_pos){6, 0}, NULL)); /* off the board */
    ck_assert(!c4_line_through(&b, (c4_pos){0, -1}, NULL));
}
END_TEST

/* A full board without four: 21 discs each, the last move draws. */
static const int DRAW[] = {1, 0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 1, 1, 2, 2, 4, 2, 2, 3, 2, 3,
                           3, 4, 3, 3, 3, 6, 4, 4, 5, 5, 4, 5, 6, 5, 5, 4, 5, 6, 6, 6, 6};

START_TEST(a_full_board_without_four_is_a_draw)
{
    ck_assert_uint_eq(N(DRAW), C4_CELLS);
    c4_board b = C4_BOARD_INIT;
    c4_move mv;
    for (size_t i = 0; i + 1 < N(DRAW); i++) { /* nothing ends before the 42nd move */
        ck_assert_int_eq(c4_drop(&b, DRAW[i], c4_to_move((int)i), &mv), 0);
        ck_assert_msg(mv.outcome == C4_ONGOING, "move %zu ended the game", i + 1);
    }
    ck_assert(!c4_full(&b));
    ck_assert_int_eq(c4_drop(&b, DRAW[41], c4_to_move(41), &mv), 0);
    ck_assert_int_eq(mv.outcome, C4_DRAWN);
    ck_assert(c4_full(&b));
    ck_assert(!c4_find_line(&b, NULL));
    ck_assert_int_eq(c4_count(&b, C4_X), 21);
    ck_assert_int_eq(c4_count(&b, C4_O), 21);
    assert_board(&b, "XXOOXOO" "OOOXOOX" "XXXOXXO" "OOXOOXX" "XOOXXXO" "OXXXOOX");
    for (int c = 0; c < C4_COLS; c++)
        ck_assert_int_eq(c4_drop(&b, c, C4_X, NULL), C4_EFULL);
}
END_TEST

START_TEST(four_made_by_the_move_that_fills_the_board_is_a_win_not_a_draw)
{
    static const int seq[] = {0, 0, 0, 0, 0, 0, 2, 1, 4, 1, 1, 2, 1, 2, 1, 1, 2, 2, 5, 3, 3,
                              4, 3, 5, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 5, 6, 6, 5, 6, 6, 2, 3};
    c4_move mv;
    int n;
    c4_board b = played(seq, N(seq), &mv, &n);
    ck_assert_int_eq(n, 42);
    ck_assert(c4_full(&b));
    ck_assert_int_eq(mv.outcome, C4_WON);
    static const int want[4][2] = {{0, 3}, {0, 4}, {0, 5}, {0, 6}};
    assert_line(mv.line, want);
}
END_TEST

START_TEST(play_stops_after_the_move_that_ends_the_game_and_reports_illegal_moves)
{
    static const int seq[] = {0, 1, 0, 1, 0, 1, 0, 1, 1};
    c4_board b = C4_BOARD_INIT;
    c4_move mv;
    ck_assert_int_eq(c4_play(&b, seq, N(seq), &mv), 7); /* X won with the 7th */
    ck_assert_int_eq(c4_count(&b, C4_O), 3);
    c4_board c = C4_BOARD_INIT;
    static const int bad[] = {2, 2, 2, 2, 2, 2, 2};
    ck_assert_int_eq(c4_play(&c, bad, N(bad), NULL), C4_EFULL);
    ck_assert_int_eq(c4_count(&c, C4_X) + c4_count(&c, C4_O), 6);
    static const int off[] = {9};
    ck_assert_int_eq(c4_play(&c, off, 1, NULL), C4_ECOLUMN);
    /* from a position: O to move after X's one disc */
    c4_board d = C4_BOARD_INIT;
    ck_assert_int_eq(c4_drop(&d, 3, C4_X, NULL), 0);
    static const int one[] = {3};
    ck_assert_int_eq(c4_play(&d, one, 1, &mv), 1);
    ck_assert_int_eq(d.cell[mv.at.row][mv.at.col], C4_O);
}
END_TEST

START_TEST(format_and_parse_round_trip)
{
    c4_move mv;
    c4_board b = played(DRAW, 20, &mv, NULL), back;
    char text[C4_CELLS + 1];
    c4_format(&b, text);
    ck_assert_uint_eq(strlen(text), C4_CELLS);
    ck_assert_int_eq(c4_parse(text, &back), 0);
    ck_assert_mem_eq(&b, &back, sizeof b);
    c4_board empty = C4_BOARD_INIT;
    ck_assert_int_eq(c4_parse("..........................................", &back), 0);
    ck_assert_mem_eq(&back, &empty, sizeof back);
}
END_TEST

START_TEST(parse_refuses_what_no_game_reaches)
{
    c4_board b = C4_BOARD_INIT, keep;
    ck_assert_int_eq(c4_drop(&b, 0, C4_X, NULL), 0);
    keep = b;
    const char *bad[] = {
        NULL,
        "",
        ".........................................",   /* 41 */
        "...........................................", /* 43 */
        "...................................X.....x",  /* not X/O */
        "X...................................O.....",  /* floating disc */
        "...................................OO....X",  /* more O than X */
        "...................................XX....X",  /* X two ahead */
    };
    for (size_t i = 0; i < N(bad); i++) {
        ck_assert_msg(c4_parse(bad[i], &b) == C4_EINVALID, "case %zu accepted", i);
        ck_assert_mem_eq(&b, &keep, sizeof b); /* untouched */
    }
    ck_assert_int_eq(c4_parse("..................................O......X", &b), 0);
    ck_assert_int_eq(b.cell[5][6], C4_X);
    ck_assert_int_eq(b.cell[4][6], C4_O);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("connect4");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, x_moves_first_then_turns_alternate);
    tcase_add_test(tc, a_disc_lands_on_the_lowest_empty_cell_and_a_column_holds_six);
    tcase_add_test(tc, columns_outside_0_to_6_and_empty_marks_are_refused);
    tcase_add_test(tc, four_vertical_wins);
    tcase_add_test(tc, four_horizontal_wins);
    tcase_add_test(tc, four_rising_diagonal_wins);
    tcase_add_test(tc, four_falling_diagonal_wins);
    tcase_add_test(tc, the_second_player_can_win);
    tcase_add_test(tc, five_in_a_row_reports_the_first_four_with_the_last_disc);
    tcase_add_test(tc, three_in_a_row_or_a_broken_four_does_not_win);
    tcase_add_test(tc, a_full_board_without_four_is_a_draw);
    tcase_add_test(tc, four_made_by_the_move_that_fills_the_board_is_a_win_not_a_draw);
    tcase_add_test(tc, play_stops_after_the_move_that_ends_the_game_and_reports_illegal_moves);
    tcase_add_test(tc, format_and_parse_round_trip);
    tcase_add_test(tc, parse_refuses_what_no_game_reaches);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
