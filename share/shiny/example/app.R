# Atrium's example Shiny app: the output is computed by R on the server and sent over Shiny's WebSocket.
library(shiny)

ui <- fluidPage(
  titlePanel("Shiny in Atrium"),
  sidebarLayout(
    sidebarPanel(sliderInput("n", "n", min = 1, max = 20, value = 6)),
    mainPanel(
      h3(textOutput("product")),
      p("Put your own app in ~/shiny-app (app.R) and start a new session to run it."),
      plotOutput("plot", height = "300px")
    )
  )
)

server <- function(input, output, session) {
  output$product <- renderText(sprintf("n * 7 = %d", input$n * 7L))
  output$plot <- renderPlot(plot(seq_len(input$n), (seq_len(input$n)) * 7, type = "b",
                                 xlab = "n", ylab = "n * 7", col = "steelblue", pch = 19))
}

shinyApp(ui, server)
