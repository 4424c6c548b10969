/*
 * The rules of Connect Four: 7 columns by 6 rows, discs dropped in turn (X first), four in a
 * row horizontally, vertically or diagonally wins, a full board without four is a draw.
 *
 * Pure functions over a value type: no I/O, no allocation, no globals; any thread. What the
 * Game State handlers (game_state.c) apply and tests/unit/test_connect4.c checks.
 *
 * Coordinates are the API's: row 0 is the top row and row 5 the bottom one (where a disc
 * dropped into an empty column lands); column 0 is the leftmost.
 */
#ifndef TB_GAME_STATE_CONNECT4_H
#define TB_GAME_STATE_CONNECT4_H

#include <stdbool.h>
#include <stddef.h>

#define C4_ROWS 6
#define C4_COLS 7
#define C4_CELLS (C4_ROWS * C4_COLS)

/* Errors: 0 or one of these (negative, as everywhere in tablium). */
#define C4_ECOLUMN (-1)  /* the column is outside 0..6 */
#define C4_EFULL (-2)    /* the column has no room */
#define C4_EMARK (-3)    /* the mark is not X or O */
#define C4_EINVALID (-4) /* a board text no game can reach (c4_parse) */

typedef enum c4_mark {
    C4_EMPTY = 0,
    C4_X = 1, /* the first player */
    C4_O = 2,
} c4_mark;

typedef struct c4_board {
    unsigned char cell[C4_ROWS][C4_COLS]; /* c4_mark values; [0][...] is the top row */
} c4_board;

#define C4_BOARD_INIT {{{0}}}

typedef struct c4_pos {
    int row, col;
} c4_pos;

typedef enum c4_outcome {
    C4_ONGOING = 0,
    C4_WON,   /* the move made four in a row */
    C4_DRAWN, /* the move filled the board without four */
} c4_outcome;

/** What one move did. */
typedef struct c4_move {
    c4_pos at;          /* the cell the disc landed in */
    c4_outcome outcome;
    c4_pos line[4];     /* C4_WON: the four, in order along the line (see c4_line_through) */
} c4_move;

/** Empties the board. */
void c4_board_init(c4_board *b);

/** The mark whose turn it is after `moves_made` moves: X on even counts, O on odd ones. */
c4_mark c4_to_move(int moves_made);

/** The row a disc dropped into `col` lands in; C4_ECOLUMN or C4_EFULL. */
int c4_landing_row(const c4_board *b, int col);

/**
 * Drops a disc of mark `m` into column `col`: 0 and *out (may be NULL) filled, or C4_ECOLUMN,
 * C4_EFULL or C4_EMARK with the board unchanged. Whose turn it is and whether the game is still
 * on are the caller's to check (the board does not know who moved last or that it was won).
 */
int c4_drop(c4_board *b, int col, c4_mark m, c4_move *out);

/**
 * Whether the disc at p is part of four (or more) of its mark in a row. When it is, line (may
 * be NULL) gets four consecutive cells of that row that include p, the first such four from
 * the row's start, in this order of directions: horizontal (left to right), vertical (top to
 * bottom), diagonal "\" (top-left to bottom-right), diagonal "/" (bottom-left to top-right).
 * False for an empty cell or a position off the board.
 */
bool c4_line_through(const c4_board *b, c4_pos p, c4_pos line[4]);

/** True when some mark has four in a row anywhere on the board; its line in `line` (may be
 *  NULL). Scans rows top to bottom, columns left to right. */
bool c4_find_line(const c4_board *b, c4_pos line[4]);

/** True when every cell holds a disc. */
bool c4_full(const c4_board *b);

/** Discs of mark m on the board. */
int c4_count(const c4_board *b, c4_mark m);

/** The board as 42 characters '.', 'X', 'O', row 0 first, each row from column 0, plus a NUL
 *  (the form the service stores). */
void c4_format(const c4_board *b, char out[C4_CELLS + 1]);

/**
 * Reads c4_format's text (exactly 42 characters of ".XO"): 0, or C4_EINVALID when it is not
 * that or is a position no game reaches: a disc above an empty cell, or counts other than
 * X == O or X == O + 1. *b is untouched on failure.
 */
int c4_parse(const char *s, c4_board *b);

/**
 * Plays `cols` from the board's current position, marks alternating from whoever is to move
 * (c4_to_move of the discs on the board), stopping after a move that ends the game. Returns the
 * number of moves played (the last one's result in *last, may be NULL), or the C4_E code of
 * the first illegal move (the moves before it stay played). For tests and replays.
 */
int c4_play(c4_board *b, const int *cols, size_t n, c4_move *last);

#endif
